"""The inbox → pipeline → outbox path on both engines."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select

from connectors.base import MessageKind, InboundMessage, Sender
from intake.pipeline import Services
from intake.inbox import Inbox
from intake.settings import Settings
from intake.steps import default_pipeline
from intake.worker import Worker
from models import AuditEvent, Complaint, ComplaintMessage, CustomerIdentity, InboxItem, OutboxItem, Timer
from tests.fakes import KeywordClassifier
from workflow.calendar import WorkCalendar


def make_worker(sessionmaker, keyring, **settings):
    services = Services(settings=Settings(**settings), calendar=WorkCalendar(), keyring=keyring,
                        outbound_channels=frozenset({"email", "webchat"}))
    return Worker(sessionmaker, default_pipeline(), services, KeywordClassifier())


def msg(external_id, text="快递三天还没到", channel="email", handle="li@example.com", kind=MessageKind.MESSAGE,
        refs=(), phone=None, **kw):
    return InboundMessage(channel=channel, external_id=external_id,
                          sender=Sender(handle=handle, name="李雷", email=handle if "@" in handle else None, phone=phone),
                          text=text, received_at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                          reply_to={"address": handle}, kind=kind, thread_refs=tuple(refs), **kw)


async def test_message_becomes_complaint_with_number_route_sla_and_ack(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    await inbox.accept(msg("m1", text="申请退款一个月了还没到账"))
    assert await worker.run_once() == 1
    async with sessionmaker() as s:
        c = await s.scalar(select(Complaint))
        assert re.fullmatch(r"\d{8}-FN-0001", c.number)
        assert (c.category, c.urgency, c.department_code, c.status) == ("price_refund", "P1", "FN", "registered")
        assert (c.response_due - c.received_at).total_seconds() == 4 * 3600
        assert (c.resolve_due - c.received_at).total_seconds() == 48 * 3600
        assert [t["step"] for t in c.trace] == ["normalize", "link_customer", "thread", "classify", "route",
                                               "register", "repeat", "acknowledge"]
        ack = await s.scalar(select(OutboxItem))
        assert ack.kind == "ack" and ack.dedupe_key == f"ack:{c.id}" and c.number in ack.payload["text"]
        assert await s.scalar(select(func.count()).select_from(Timer).where(Timer.complaint_id == c.id)) == 2
        assert await s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "registered")) == 1
        item = await s.scalar(select(InboxItem))
        assert (item.status, item.complaint_id) == ("done", c.id)


async def test_serial_counts_per_department(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    for i, text in enumerate(["快递慢", "退款没到", "快递丢了", "客服态度差"]):
        await inbox.accept(msg(f"m{i}", text=text, handle=f"c{i}@example.com"))
    await worker.run_once()
    async with sessionmaker() as s:
        numbers = (await s.scalars(select(Complaint.number).order_by(Complaint.id))).all()
    assert [n.split("-", 1)[1] for n in numbers] == ["LG-0001", "FN-0001", "LG-0002", "CS-0001"]


async def test_reply_with_number_is_threaded_for_the_same_customer_only(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    await inbox.accept(msg("m1"))
    await worker.run_once()
    async with sessionmaker() as s:
        number = await s.scalar(select(Complaint.number))
    await inbox.accept(msg("m2", text="补充：订单号 123", refs=[number]))
    await inbox.accept(msg("m3", text="我也要投诉", refs=[number], handle="stranger@example.com"))
    await worker.run_once()
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Complaint)) == 2
        thread = (await s.scalars(select(ComplaintMessage.text).join(Complaint).where(
            Complaint.number == number).order_by(ComplaintMessage.id))).all()
        assert thread == ["快递三天还没到", "补充：订单号 123"]
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 2  # no ack for the appended reply


async def test_same_customer_across_channels_by_phone(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    await inbox.accept(msg("m1", phone="13812345678"))
    await inbox.accept(msg("w1", channel="webchat", handle="session-9", phone="+86 138-1234-5678", text="又没到"))
    await worker.run_once()
    async with sessionmaker() as s:
        customers = (await s.scalars(select(Complaint.customer_id))).all()
        assert len(customers) == 2 and customers[0] == customers[1]
        kinds = sorted((await s.scalars(select(CustomerIdentity.kind))).all())
        assert kinds == ["email", "phone", "webchat"]


async def test_auto_reply_and_bounce_are_recorded_never_acknowledged(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    await inbox.accept(msg("m1"))
    await worker.run_once()
    async with sessionmaker() as s:
        number = await s.scalar(select(Complaint.number))
    await inbox.accept(msg("a1", text="I am out of office", kind=MessageKind.AUTO_REPLY))
    await inbox.accept(msg("b1", text="Delivery failed", kind=MessageKind.BOUNCE, handle="mailer-daemon@example.com",
                           refs=[number]))
    await worker.run_once()
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Complaint)) == 1
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 1
        kinds = (await s.scalars(select(ComplaintMessage.kind).order_by(ComplaintMessage.id))).all()
        assert kinds == ["message", "bounce"]
        statuses = (await s.scalars(select(InboxItem.status))).all()
        assert statuses == ["done", "done", "done"]


async def test_unparseable_and_empty_messages_are_quarantined_with_reason(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    await inbox.accept(msg("q1", text="", meta={"parse_error": "no MIME boundary found"}, raw=b"\x00garbage"))
    await inbox.accept(msg("q2", text="   "))
    await inbox.accept(msg("ok", text="快递没到"))
    await worker.run_once()
    async with sessionmaker() as s:
        rows = {r.external_id: r for r in (await s.scalars(select(InboxItem))).all()}
        assert rows["q1"].status == "quarantined" and "MIME boundary" in rows["q1"].last_error
        assert rows["q1"].raw == b"\x00garbage"
        assert rows["q2"].status == "quarantined" and "no text" in rows["q2"].last_error
        assert rows["ok"].status == "done"


async def test_ack_rate_limit_per_sender(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring, ack_limit_per_hour=3)
    for i in range(5):
        await inbox.accept(msg(f"m{i}", text=f"第{i}个问题"))
    await worker.run_once()
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Complaint)) == 5
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 3


async def test_failing_step_retries_then_dies_without_touching_other_items(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    worker.max_attempts = 2

    class Boom:
        name = "boom"

        async def run(self, ctx):
            if ctx.msg.external_id == "bad":
                raise RuntimeError("database hiccup")

    worker.pipeline.steps.insert(1, Boom())
    await inbox.accept(msg("bad"))
    await inbox.accept(msg("good", handle="x@example.com"))
    await worker.run_once()
    async with sessionmaker() as s:
        bad = await s.scalar(select(InboxItem).where(InboxItem.external_id == "bad"))
        assert (bad.status, bad.attempts) == ("pending", 1) and "database hiccup" in bad.last_error
        bad.next_attempt_at = bad.accepted_at
        await s.commit()
    await worker.run_once()
    async with sessionmaker() as s:
        bad = await s.scalar(select(InboxItem).where(InboxItem.external_id == "bad"))
        assert (bad.status, bad.attempts) == ("dead", 2)
        assert await s.scalar(select(func.count()).select_from(Complaint)) == 1
