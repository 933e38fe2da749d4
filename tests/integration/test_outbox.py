"""The outbox dispatcher: send once, retry transient failures, dead-letter permanent ones."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectors.base import PermanentSendError, SendResult, TransientSendError, WindowClosedError
from intake.outbox import Dispatcher
from models import Complaint, ComplaintMessage, Customer, CustomerIdentity, OutboxItem, utcnow


class RecordingChannel:
    """A channel whose send() behaves as the test says; records what it was asked to send."""

    def __init__(self, name, *failures):
        self.name, self.failures, self.sent = name, list(failures), []

    async def send(self, item):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(item)
        return SendResult(external_id=f"<{item.dedupe_key}@kesu>")


async def add_complaint(sm, keyring, *, email="c@example.com"):
    async with sm() as s:
        customer = Customer(email=email)
        s.add(customer)
        await s.flush()
        s.add(CustomerIdentity(customer_id=customer.id, kind="email", value_hash=keyring.blind_index("email", email),
                               value=email))
        now = utcnow()
        c = Complaint(number="20261123-CS-0001", customer_id=customer.id, channel="wechat", category="service",
                      urgency="P2", department_code="CS", text="客服不回复", received_at=now, response_due=now,
                      resolve_due=now)
        s.add(c)
        await s.commit()
        return c.id


async def add_item(sm, complaint_id, channel="wechat", key="ack:1"):
    async with sm() as s:
        s.add(OutboxItem(channel=channel, kind="ack", complaint_id=complaint_id, reply_to={"openid": "o1"},
                         payload={"subject": "[20261123-CS-0001] 已受理", "text": "已受理"}, dedupe_key=key))
        await s.commit()


async def rows(sm):
    async with sm() as s:
        return (await s.scalars(select(OutboxItem).order_by(OutboxItem.id))).all()


async def test_sent_once_and_recorded_on_the_thread(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid)
    channel = RecordingChannel("wechat")
    d = Dispatcher(sessionmaker, {"wechat": channel})
    assert await d.run_once() == 1
    assert await d.run_once() == 0
    [row] = await rows(sessionmaker)
    assert (row.status, row.attempts, row.external_id) == ("sent", 1, "<ack:1@kesu>")
    assert len(channel.sent) == 1
    async with sessionmaker() as s:
        msg = await s.scalar(select(ComplaintMessage))
    assert (msg.direction, msg.kind, msg.text, msg.message_id) == ("out", "ack", "已受理", "<ack:1@kesu>")


async def test_transient_failure_retries_later_then_gives_up(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid)
    channel = RecordingChannel("wechat", TransientSendError("connection refused"), ConnectionError("reset"))
    d = Dispatcher(sessionmaker, {"wechat": channel}, max_attempts=2)
    await d.run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "pending" and row.next_attempt_at > utcnow() and "connection refused" in row.last_error
    assert await d.run_once() == 0          # not due yet
    async with sessionmaker() as s:
        (await s.get(OutboxItem, row.id)).next_attempt_at = utcnow() - timedelta(seconds=1)
        await s.commit()
    await d.run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "dead" and "gave up after 2 attempts" in row.last_error and not channel.sent


async def test_permanent_failure_is_dead_at_once(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid)
    d = Dispatcher(sessionmaker, {"wechat": RecordingChannel("wechat", PermanentSendError("550 no such user"))})
    await d.run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "dead" and "550" in row.last_error


async def test_missing_connector_is_dead_with_reason(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid, channel="fax")
    await Dispatcher(sessionmaker, {}).run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "dead" and "no connector" in row.last_error


async def test_closed_window_falls_back_to_the_customers_email(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring, email="fan@example.com")
    await add_item(sessionmaker, cid)
    email = RecordingChannel("email")
    d = Dispatcher(sessionmaker, {"wechat": RecordingChannel("wechat", WindowClosedError("45015")), "email": email})
    await d.run_once()
    await d.run_once()
    original, fallback = await rows(sessionmaker)
    assert original.status == "undeliverable" and "e-mail" in original.last_error
    assert (fallback.channel, fallback.status, fallback.reply_to["address"]) == ("email", "sent", "fan@example.com")
    assert email.sent[0].payload["text"] == "已受理"


async def test_closed_window_without_other_contact_is_left_to_an_agent(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid)
    await Dispatcher(sessionmaker, {"wechat": RecordingChannel("wechat", WindowClosedError("45047"))}).run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "undeliverable"


async def test_expired_lease_of_a_killed_sender_is_reclaimed(sessionmaker, keyring):
    cid = await add_complaint(sessionmaker, keyring)
    await add_item(sessionmaker, cid)
    async with sessionmaker() as s:
        row = await s.scalar(select(OutboxItem))
        row.status, row.lease_until, row.attempts = "sending", utcnow() - timedelta(seconds=1), 1
        await s.commit()
    channel = RecordingChannel("wechat")
    await Dispatcher(sessionmaker, {"wechat": channel}).run_once()
    [row] = await rows(sessionmaker)
    assert row.status == "sent" and row.attempts == 2 and len(channel.sent) == 1
