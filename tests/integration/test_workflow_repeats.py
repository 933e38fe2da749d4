"""Repeat complaints on both engines: same customer and category within 30 days, or a text similar
to one of the customer's open complaints; linked to the earlier one and raised to at least P1."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import AuditEvent, OutboxItem, Timer
from tests.integration.test_workflow_loop import T0, ENV, load, new_complaint
from workflow.repeats import similarities
from workflow.scheduler import Scheduler


async def test_same_customer_same_category_within_30_days_is_a_p1_repeat(sessionmaker, keyring):
    first = await new_complaint(sessionmaker, keyring, "m1", "快递三天还没到", received_at=T0)
    second = await new_complaint(sessionmaker, keyring, "m2", "包裹又被快递员弄丢了", received_at=T0 + timedelta(days=20))
    c = await load(sessionmaker, second.number)
    assert c.repeat_of_id == first.id and c.category == first.category == "logistics"
    assert c.urgency == "P1"
    assert c.response_due == c.received_at + timedelta(hours=4)
    assert c.resolve_due == c.received_at + timedelta(hours=48)
    assert [t for t in c.trace if t["step"] == "repeat"][0]["of"] == first.number
    async with sessionmaker() as s:
        ack = await s.scalar(select(OutboxItem).where(OutboxItem.complaint_id == c.id, OutboxItem.kind == "ack"))
        assert ack.payload["urgency"] == "P1" and "4小时" in ack.payload["text"]     # the customer hears the P1 promise
        event = await s.scalar(select(AuditEvent).where(AuditEvent.action == "repeat_linked"))
        assert event.before == {"repeat_of": None, "urgency": "P2"}
        assert event.after["repeat_of"] == first.number and event.after["reason"] == "same_category"
        live = (await s.scalars(select(Timer).where(Timer.complaint_id == c.id, Timer.kind == "response_warning")
                                .order_by(Timer.id))).all()
        assert [t.dedupe_key.endswith(":r1") for t in live] == [False, True]
    # the warning set for the old P2 deadline retires as stale; the P1 one warns
    sched = Scheduler(sessionmaker, ENV)
    await sched.run_once(c.received_at + timedelta(hours=7))
    async with sessionmaker() as s:
        outcomes = {t.dedupe_key: t.payload["outcome"] for t in (await s.scalars(
            select(Timer).where(Timer.complaint_id == c.id, Timer.kind == "response_warning"))).all()}
    assert outcomes == {f"response_warning:{c.id}": "stale", f"response_warning:{c.id}:r1": "warned"}


async def test_not_a_repeat_after_30_days_or_for_another_customer(sessionmaker, keyring):
    await new_complaint(sessionmaker, keyring, "m1", "快递三天还没到", received_at=T0)
    other = await new_complaint(sessionmaker, keyring, "m2", "快递三天还没到", handle="wang@example.com",
                                received_at=T0 + timedelta(days=1))
    assert (await load(sessionmaker, other.number)).repeat_of_id is None
    # the first complaint is closed (no longer open), so only the 30-day category rule could apply
    late = await new_complaint(sessionmaker, keyring, "m3", "又一个物流问题", received_at=T0 + timedelta(days=31))
    late = await load(sessionmaker, late.number)
    assert late.urgency == "P2"


async def test_similar_text_to_an_open_complaint_of_another_category(sessionmaker, keyring):
    first = await new_complaint(sessionmaker, keyring, "m1", "订单A100的电饭煲退款还没有到账，已经一个月了",
                                received_at=T0 - timedelta(days=40))
    again = await new_complaint(sessionmaker, keyring, "m2", "电饭煲订单A100已经一个月了，还是没有到账",
                                received_at=T0)
    c = await load(sessionmaker, again.number)
    assert c.repeat_of_id == first.id
    async with sessionmaker() as s:
        event = await s.scalar(select(AuditEvent).where(AuditEvent.action == "repeat_linked"))
    assert event.after["reason"] == "similar_text" and event.after["score"] >= 0.5


def test_tfidf_similarity():
    a = "快递三天还没到，订单号A100"
    scores = similarities(a, ["订单A100的快递三天了还没到", "客服态度很差，挂我电话", a])
    assert scores[0] > 0.5 > scores[1] and abs(scores[2] - 1.0) < 1e-9
