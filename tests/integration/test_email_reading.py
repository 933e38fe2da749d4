"""Mail committed unread by the IMAP poller is read in full by the worker, on both engines:
ahead of the batch (with the classifier, off the event loop) or, for mail that arrived after
the look-ahead, inside the batch's transaction; both give the same result."""
from __future__ import annotations

import base64
import threading
from datetime import datetime, timezone

from sqlalchemy import func, select

from connectors.email.deferred import peek, unread_message
from connectors.email.msgid import make_message_id
import intake.worker as worker_module
from intake.inbox import Inbox
from intake.settings import SmtpSettings
from models import Complaint, ComplaintMessage, InboxItem, OutboxItem
from tests.integration.test_pipeline import make_worker

WHEN = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def mail(mid: str, *, sender: str = "wang@example.cn", subject: str = "冰箱不制冷", extra: str = "",
         message_id: str | None = None) -> bytes:
    head = (f"From: 王五 <{sender}>\r\nTo: cs@kesu.example\r\nMessage-ID: {message_id or f'<{mid}@example.cn>'}\r\n{extra}"
            f"Subject: =?gb2312?B?{base64.b64encode(subject.encode('gb2312')).decode()}?=\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n")
    return head.encode() + "买的冰箱三天就不制冷了，要求换货。".encode("gb18030")


def unread(raw: bytes, uid: int = 1):
    return unread_message(raw, peek(raw), received_at=WHEN, meta={"mailbox": "cs@test/INBOX", "uid": uid})


async def item(sm, external_id: str) -> InboxItem:
    async with sm() as s:
        return await s.scalar(select(InboxItem).where(InboxItem.external_id == external_id))


async def test_unread_mail_is_read_the_same_ahead_and_inside_the_transaction(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    ahead, late = unread(mail("a")), unread(mail("b", sender="zhao@example.cn"), uid=2)
    await inbox.accept(ahead)
    assert await worker.run_once() == 1            # look-ahead read it in a thread
    await inbox.accept(late)
    assert await worker.process_one("email", late.external_id)   # no look-ahead: read in the transaction
    async with sessionmaker() as s:
        complaints = (await s.scalars(select(Complaint).order_by(Complaint.id))).all()
        texts = (await s.scalars(select(ComplaintMessage.text).order_by(ComplaintMessage.id))).all()
    assert len(complaints) == 2 and all(c.subject == "冰箱不制冷" for c in complaints)
    assert texts == ["买的冰箱三天就不制冷了，要求换货。"] * 2
    for committed in (ahead, late):
        row = await item(sessionmaker, committed.external_id)
        # The row now holds what was read (agents see it; a retry does not read again).
        assert row.status == "done" and "unread" not in row.message["meta"]
        assert row.message["subject"] == "冰箱不制冷" and row.message["meta"]["mailbox"] == "cs@test/INBOX"
        assert row.message["sender"]["email"] in ("wang@example.cn", "zhao@example.cn")


async def test_unread_auto_reply_takes_its_kind_when_read_and_is_not_acknowledged(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    msg = unread(mail("auto", extra="Auto-Submitted: auto-replied\r\n"))
    await inbox.accept(msg)
    await worker.run_once()
    row = await item(sessionmaker, msg.external_id)
    assert (row.status, row.kind, row.complaint_id) == ("done", "auto_reply", None)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 0


async def test_unread_mail_that_cannot_be_read_is_quarantined_with_the_reason(sessionmaker, keyring):
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    garbage = b"this is not an e-mail at all\r\njust bytes \xff\xfe\r\n"
    msg = unread(garbage)
    assert msg.external_id.startswith("sha256:")
    await inbox.accept(msg)
    await worker.run_once()
    row = await item(sessionmaker, msg.external_id)
    assert row.status == "quarantined" and "no mail headers" in row.last_error
    assert row.raw == garbage and "no mail headers" in row.message["meta"]["parse_error"]


async def test_our_own_mail_seen_only_when_read_is_ignored(sessionmaker, keyring):
    # The poller did not know our address (say, it changed); reading the mail finds it is ours.
    inbox = Inbox(sessionmaker)
    worker = make_worker(sessionmaker, keyring, smtp=SmtpSettings(host="127.0.0.1", sender="客服 <cs@kesu.example>"))
    msg = unread(mail("back", sender="cs@kesu.example"))
    assert not peek(msg.raw).ours
    await inbox.accept(msg)
    await worker.run_once()
    row = await item(sessionmaker, msg.external_id)
    assert (row.status, row.complaint_id) == ("done", None)
    assert any(t["decision"] == "our own message came back: ignored" for t in row.trace)


async def test_the_poller_knows_our_signed_message_ids_and_our_address_from_the_headers(keyring):
    ours = make_message_id("20261122-CS-0001", "kesu.example")
    assert peek(mail("", message_id=ours)).ours
    forged = ours.replace(ours.split(".")[2][:4], "0000" if not ours.split(".")[2].startswith("0000") else "1111", 1)
    assert not peek(mail("", message_id=forged)).ours
    own = frozenset({"cs@kesu.example"})
    assert peek(mail("m1", sender="CS@Kesu.Example"), own_addresses=own).ours
    assert not peek(mail("m2", sender="cs@kesu.example.evil.cn"), own_addresses=own).ours


async def test_mail_the_look_ahead_could_not_read_is_read_and_classified_in_the_transaction(
        sessionmaker, keyring, monkeypatch):
    real = worker_module.read_in_full

    def fails_in_threads(msg, settings):
        if threading.current_thread() is not threading.main_thread():
            raise MemoryError("say, a huge message in the look-ahead")
        return real(msg, settings)

    monkeypatch.setattr(worker_module, "read_in_full", fails_in_threads)
    inbox, worker = Inbox(sessionmaker), make_worker(sessionmaker, keyring)
    msg = unread(mail("refund", subject="退款").replace("买的冰箱".encode("gb18030"), "申请退款".encode("gb18030")))
    await inbox.accept(msg)
    await worker.run_once()
    async with sessionmaker() as s:
        c = await s.scalar(select(Complaint))
    # classified from the text read in the transaction, not from the empty text of the unread row
    assert (c.category, c.urgency) == ("price_refund", "P1")
