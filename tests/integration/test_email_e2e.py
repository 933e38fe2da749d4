"""End to end: real Dovecot in, the whole kesu daemon, real SMTP server out.

500 mails become 500 complaints with one threaded acknowledgement each; a reply to an
acknowledgement lands on its complaint; kill -9 during ingestion loses and repeats nothing;
auto-replies, bounces and an auto-reply loop get no acknowledgement.
"""
from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.email.mime import parse
from connectors.email.msgid import verify
from intake.daemon import Kesu
from intake.settings import Settings, SmtpSettings
from models import Complaint, ComplaintMessage, InboxItem, OutboxItem, make_engine, make_sessionmaker
from tests.conftest import TEST_KEY
from tests.email_servers import (complaint_mail, complaint_texts, dovecot, free_port, imap_append,  # noqa: F401
                                 smtp_server)

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]
N = 500


def settings_for(url: str, model_dir: str, box, smtp, tmp_path: Path) -> Settings:
    return Settings(database_url=url, http_host="127.0.0.1", http_port=free_port(),
                    secret_key=base64.b64encode(TEST_KEY).decode(), key_file=str(tmp_path / "unused.key"),
                    model_dir=model_dir, worker_idle_seconds=0.2, mailboxes=(box,),
                    smtp=SmtpSettings(host=smtp.host, port=smtp.port, sender="客服中心 <service@kesu.example>",
                                      tls="none"))


class Db:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sm = make_sessionmaker(self.engine)

    async def scalar(self, stmt):
        async with self.sm() as s:
            return await s.scalar(stmt)

    async def all(self, stmt):
        async with self.sm() as s:
            return (await s.execute(stmt)).all()

    async def settled(self, inbox_rows: int, timeout: float = 240) -> None:
        """Wait until `inbox_rows` messages are in and nothing is pending in the inbox or outbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total = await self.scalar(select(func.count()).select_from(InboxItem))
            pending = await self.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.status == "pending"))
            sending = await self.scalar(select(func.count()).select_from(OutboxItem)
                                        .where(OutboxItem.status.in_(("pending", "sending"))))
            if total >= inbox_rows and pending == 0 and sending == 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"not settled: {total} inbox rows, {pending} pending, {sending} outbox pending")

    async def close(self):
        await self.engine.dispose()


def acks_by_number(received) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in received:
        msg = r.message
        ok, number = verify(str(msg["Message-ID"]))
        assert ok, msg["Message-ID"]
        out.setdefault(number, []).append(msg)
    return out


async def test_500_mails_become_500_complaints_with_one_threaded_ack_each_and_a_reply_threads(
        sqlite_url, model_dir, dovecot, smtp_server, tmp_path):
    box = dovecot.settings(dovecot.user(), poll_seconds=5)
    texts = complaint_texts(N)
    mails = [complaint_mail(i, t) for i, t in enumerate(texts)]
    for i in range(0, N, 100):
        await imap_append(box, mails[i:i + 100])
    sent_ids = {parse(m).message_id: i for i, m in enumerate(mails)}
    db = Db(sqlite_url)
    try:
        async with Kesu(settings_for(sqlite_url, model_dir, box, smtp_server, tmp_path)):
            await db.settled(N)
            received = await smtp_server.recorder.wait_for(N)
            assert await db.scalar(select(func.count()).select_from(Complaint)) == N
            assert len(received) == N
            acks = acks_by_number(received)
            assert len(acks) == N and all(len(v) == 1 for v in acks.values())
            numbers = dict(await db.all(select(Complaint.number, Complaint.id)))
            assert set(acks) == set(numbers)
            for number, [ack] in acks.items():
                parent = ack["In-Reply-To"]
                assert parent in sent_ids                                  # threads under the customer's mail
                assert parent in str(ack["References"]).split()
                assert f"[{number}]" in ack["Subject"] and ack["Auto-Submitted"] == "auto-replied"
                assert ack["To"].addresses[0].addr_spec == f"c{sent_ids[parent]}@example.cn"
            # Chinese text survived every encoding on the way in.
            one = (await db.all(select(Complaint.text).where(Complaint.number == next(iter(acks)))))[0][0]
            assert any(one.startswith(t[:10]) for t in texts)

            # The customer answers the acknowledgement of their complaint.
            number, [ack] = next(iter(acks.items()))
            customer = ack["To"].addresses[0].addr_spec
            reply = (f"From: {customer}\r\nTo: service@kesu.example\r\nMessage-ID: <reply.1@example.cn>\r\n"
                     f"In-Reply-To: {ack['Message-ID']}\r\nReferences: {ack['References']} {ack['Message-ID']}\r\n"
                     f"Subject: Re: {ack['Subject']}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                     "补充：快递单号是 SF1234567890。\r\n\r\n在 2026年11月22日 写道：\r\n> 您的投诉已受理\r\n").encode()
            await imap_append(box, [reply])
            await db.settled(N + 1)
            complaint_id = numbers[number]
            texts_on_it = [t for (t,) in await db.all(
                select(ComplaintMessage.text).where(ComplaintMessage.complaint_id == complaint_id,
                                                    ComplaintMessage.direction == "in"))]
            assert "补充：快递单号是 SF1234567890。" in texts_on_it
            assert await db.scalar(select(func.count()).select_from(Complaint)) == N      # no new complaint
    finally:
        await db.close()


async def test_auto_replies_bounces_and_a_loop_of_50_get_no_acknowledgement(
        sqlite_url, model_dir, dovecot, smtp_server, tmp_path):
    box = dovecot.settings(dovecot.user(), poll_seconds=5)
    db = Db(sqlite_url)
    try:
        async with Kesu(settings_for(sqlite_url, model_dir, box, smtp_server, tmp_path)):
            await imap_append(box, [complaint_mail(0, "我买的冰箱不制冷，要求上门维修。", sender="wang@example.cn")])
            [ack] = await smtp_server.recorder.wait_for(1)
            ours = ack.message["Message-ID"]
            number = verify(ours)[1]
            away = (f"From: wang@example.cn\r\nTo: service@kesu.example\r\nMessage-ID: <away.1@example.cn>\r\n"
                    f"In-Reply-To: {ours}\r\nAuto-Submitted: auto-replied\r\nSubject: 自动回复: {ack.message['Subject']}"
                    "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n我正在休假，11月30日回来。\r\n").encode()
            bounce = (f"From: MAILER-DAEMON@mx.example.cn\r\nTo: service@kesu.example\r\nMessage-ID: <b.1@mx>\r\n"
                      "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
                      "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\r\n"
                      "\r\n--R\r\nContent-Type: text/plain\r\n\r\nmailbox full\r\n"
                      "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.cn\r\n\r\n"
                      "Final-Recipient: rfc822; wang@example.cn\r\nAction: failed\r\nStatus: 5.2.2\r\n"
                      f"--R\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ours}\r\n"
                      "From: service@kesu.example\r\n\r\n--R--\r\n").encode()
            loop = [(f"From: robot@autoresponder.example\r\nTo: service@kesu.example\r\n"
                     f"Message-ID: <loop.{i}@autoresponder.example>\r\nX-Autoreply: yes\r\n"
                     f"Subject: Auto-Reply: thank you for your mail ({i})\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\n感谢来信，我们会尽快处理。\r\n").encode()
                    for i in range(50)]
            await imap_append(box, [away, bounce, *loop])
            await db.settled(53)
            await asyncio.sleep(1.0)      # give a wrong acknowledgement the time to show up
            assert len(smtp_server.recorder.snapshot()) == 1
            assert await db.scalar(select(func.count()).select_from(Complaint)) == 1
            kinds = Counter(k for (k,) in await db.all(
                select(ComplaintMessage.kind).join(Complaint).where(Complaint.number == number,
                                                                     ComplaintMessage.direction == "in")))
            assert kinds["bounce"] == 1                      # the delivery failure is on the complaint
            assert await db.scalar(select(func.count()).select_from(OutboxItem)) == 1
    finally:
        await db.close()


async def test_one_noisy_address_gets_at_most_five_acknowledgements_an_hour(
        sqlite_url, model_dir, dovecot, smtp_server, tmp_path):
    box = dovecot.settings(dovecot.user(), poll_seconds=5)
    db = Db(sqlite_url)
    try:
        async with Kesu(settings_for(sqlite_url, model_dir, box, smtp_server, tmp_path)):
            texts = complaint_texts(40)[20:32]
            await imap_append(box, [complaint_mail(i, t, sender="noisy@example.cn") for i, t in enumerate(texts)])
            await db.settled(len(texts))
            await asyncio.sleep(1.0)
            assert len(smtp_server.recorder.snapshot()) == 5
    finally:
        await db.close()


def _config(path: Path, url: str, model_dir: str, box, smtp, port: int) -> Path:
    path.write_text(f"""
database_url = "{url}"
http_host = "127.0.0.1"
http_port = {port}
model_dir = "{model_dir}"
secret_key = "{base64.b64encode(TEST_KEY).decode()}"
key_file = "{path.parent / 'unused.key'}"
worker_idle_seconds = 0.2

[[email]]
host = "{box.host}"
port = {box.port}
user = "{box.user}"
password = "{box.password}"
tls = "none"
poll_seconds = 2.0

[smtp]
host = "{smtp.host}"
port = {smtp.port}
sender = "service@kesu.example"
tls = "none"
""", encoding="utf-8")
    return path


def _serve(config: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    return subprocess.Popen([sys.executable, "-m", "intake", "--config", str(config), "--log-level", "WARNING",
                             "serve"], cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


async def test_kill_9_during_ingestion_then_restart_registers_and_acknowledges_each_mail_once(
        sqlite_url, model_dir, dovecot, smtp_server, tmp_path):
    box = dovecot.settings(dovecot.user())
    mails = [complaint_mail(i, t) for i, t in enumerate(complaint_texts(N))]
    for i in range(0, N, 100):
        await imap_append(box, mails[i:i + 100])
    config = _config(tmp_path / "kesu.toml", sqlite_url, model_dir, box, smtp_server, free_port())
    log = tmp_path / "kesu.log"
    db = Db(sqlite_url)
    victim = _serve(config, log)
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while time.monotonic() < deadline and victim.poll() is None:
            seen = await db.scalar(select(func.count()).select_from(InboxItem))
            if seen:
                break
            await asyncio.sleep(0.01)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        acknowledged = len(smtp_server.recorder.snapshot())
        async with db.sm() as s:
            seen = await s.scalar(select(func.count()).select_from(InboxItem))
        # Fetching is fast (batches of 100), so the kill may come after every mail is in the inbox;
        # it must still land before the run is through (mails registered and acknowledged).
        assert seen > 0 and acknowledged < N, \
            f"the kill must land during the run ({seen} of {N} in, {acknowledged} acknowledged)"

        again = _serve(config, log)
        try:
            await db.settled(N, timeout=240)
            received = await smtp_server.recorder.wait_for(N, timeout=60)
            await asyncio.sleep(1.0)
            received = smtp_server.recorder.snapshot()
        finally:
            again.send_signal(signal.SIGTERM)
            try:
                again.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(again.pid, signal.SIGKILL)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    try:
        rows = await db.all(select(InboxItem.external_id, InboxItem.status))
        assert len(rows) == N and len({r[0] for r in rows}) == N
        assert Counter(r[1] for r in rows) == {"done": N}
        assert await db.scalar(select(func.count()).select_from(Complaint)) == N
        assert await db.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == "ack")) == N
        acks = acks_by_number(received)
        assert len(acks) == N
        # A mail the SMTP server accepted just before the kill, but whose "sent" mark was not yet
        # committed, is sent again after the restart: as the very same message (same Message-ID),
        # which the customer's mail client shows once. No complaint gets two different messages,
        # and only sends in flight at the kill (one dispatcher batch at most) can repeat.
        assert all(len({str(m["Message-ID"]) for m in msgs}) == 1 for msgs in acks.values())
        assert len(received) - N <= 32, Counter(str(r.message["Message-ID"]) for r in received).most_common(3)
    finally:
        await db.close()


async def test_every_corpus_mail_through_the_daemon_is_registered_recorded_or_quarantined_with_a_reason(
        sqlite_url, model_dir, dovecot, smtp_server, tmp_path):
    corpus = Path(__file__).resolve().parents[3] / "shared" / "data" / "mail"
    raws = [p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()]
    raws = [r for r in raws if r.strip()]          # IMAP cannot store an empty message
    expected = {parse(r).external_id for r in raws if not parse(r).ours}   # Message-ID dedup across the corpus
    box = dovecot.settings(dovecot.user(), poll_seconds=5)
    for i in range(0, len(raws), 100):
        await imap_append(box, raws[i:i + 100])
    db = Db(sqlite_url)
    try:
        async with Kesu(settings_for(sqlite_url, model_dir, box, smtp_server, tmp_path)):
            await db.settled(len(expected))
            rows = await db.all(select(InboxItem.external_id, InboxItem.status, InboxItem.kind,
                                       InboxItem.complaint_id, InboxItem.last_error))
    finally:
        await db.close()
    # Messages without a Message-ID are known by a digest of the bytes the server returns
    # (Dovecot hands them back with CRLF line ends), the others by their Message-ID.
    got = {r.external_id for r in rows}
    assert {x for x in got if not x.startswith("sha256:")} == {x for x in expected if not x.startswith("sha256:")}
    assert len(got) == len(expected)
    statuses = Counter(r.status for r in rows)
    assert set(statuses) <= {"done", "quarantined"}, statuses
    for r in rows:
        if r.status == "quarantined":
            assert r.last_error and len(r.last_error) > 5
        elif r.kind == "message":
            assert r.complaint_id is not None, r
    assert statuses["done"] > statuses["quarantined"] > 0
