"""The IMAP poller against a real Dovecot, storing into the real inbox (SQLite and PostgreSQL)."""
from __future__ import annotations

import asyncio
import contextlib
import time

import aioimaplib
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from connectors.base import MessageKind
from connectors.email.imap import ImapPoller, uid_set
from connectors.email.msgid import make_message_id
from connectors.email import read_stored
from intake.inbox import Inbox, message_from_dict
from models import ChannelCursor, InboxItem, make_engine, make_sessionmaker
from tests.email_servers import close_client, dovecot, dovecot_tls, imap_append, mailbox  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(180)


@pytest_asyncio.fixture
async def sm(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def mail(i: int, *, subject: str = "冰箱坏了", message_id: str | None = "auto", sender: str = "zhang@example.cn",
         extra: str = "") -> bytes:
    mid = f"Message-ID: <m{i}.{time.time_ns()}@example.cn>\r\n" if message_id == "auto" else (
        f"Message-ID: {message_id}\r\n" if message_id else "")
    body = f"第 {i} 封：我买的冰箱不制冷，要求上门维修。".encode("gb18030")
    head = (f"From: 张三 <{sender}>\r\nTo: cs@kesu.example\r\n{mid}{extra}"
            f"Subject: =?gb2312?B?{__import__('base64').b64encode(subject.encode('gb2312')).decode()}?=\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode() + body


async def rows(sm) -> list[InboxItem]:
    async with sm() as s:
        return list((await s.scalars(select(InboxItem).order_by(InboxItem.id))).all())


async def count(sm) -> int:
    async with sm() as s:
        return await s.scalar(select(func.count()).select_from(InboxItem))


async def wait_rows(sm, n: int, timeout: float = 60.0) -> list[InboxItem]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await count(sm) >= n:
            break
        await asyncio.sleep(0.1)
    return await rows(sm)


def read(row: InboxItem):
    """The message as the worker reads it from the row."""
    return read_stored(message_from_dict(row.message, row.raw))


async def cursor(sm, poller) -> dict:
    async with sm() as s:
        row = await s.get(ChannelCursor, poller.key)
        return dict(row.value) if row else {}


async def flags(settings) -> dict[int, str]:
    client = aioimaplib.IMAP4(host=settings.host, port=settings.port, timeout=30)
    try:
        await client.wait_hello_from_server()
        await client.login(settings.user, settings.password)
        await client.select(settings.folder)
        res = await client.uid("fetch", "1:*", "(UID FLAGS)")
        await client.logout()
    finally:
        close_client(client)
    out = {}
    for line in res.lines:
        text = bytes(line).decode()
        if "FLAGS" in text and "UID" in text:
            uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
            out[uid] = text.split("FLAGS (")[1].split(")")[0]
    return out


@contextlib.asynccontextmanager
async def running(poller):
    task = asyncio.create_task(poller.serve_forever())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_messages_are_committed_then_checkpointed_and_flagged_seen(sm, mailbox):
    await imap_append(mailbox, [mail(i) for i in range(5)])
    poller = ImapPoller(mailbox, Inbox(sm), sm)
    async with running(poller):
        got = await wait_rows(sm, 5)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    assert len(got) == 5
    assert [r.message["meta"]["uid"] for r in got] == [1, 2, 3, 4, 5]
    assert all(r.channel == "email" and r.raw.startswith(b"From:") for r in got)
    # Committed unread, under the key read from its headers; the worker reads the rest.
    assert got[0].message["meta"]["unread"] == "email" and got[0].message["text"] == ""
    assert got[0].external_id.startswith("<m0.")
    first = read(got[0])
    assert first.subject == "冰箱坏了" and first.text.startswith("第 0 封：我买的冰箱不制冷")
    assert first.sender.email == "zhang@example.cn" and first.kind is MessageKind.MESSAGE
    assert first.meta["uid"] == 1 and "unread" not in first.meta
    state = await cursor(sm, poller)
    assert state["last_uid"] == 5 and state["uidvalidity"] > 0
    assert all("\\Seen" in f for f in (await flags(mailbox)).values())


async def test_mail_that_arrived_while_kesu_was_down_is_read_at_the_next_start(sm, mailbox):
    await imap_append(mailbox, [mail(i) for i in range(3)])
    async with running(ImapPoller(mailbox, Inbox(sm), sm)):
        assert len(await wait_rows(sm, 3)) == 3
    await imap_append(mailbox, [mail(i) for i in range(3, 7)])      # kesu is down
    poller = ImapPoller(mailbox, Inbox(sm), sm)
    async with running(poller):
        await wait_rows(sm, 7)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    got = await rows(sm)
    assert [r.message["meta"]["uid"] for r in got] == list(range(1, 8))
    assert poller.stats["duplicate"] == 0 and (await cursor(sm, poller))["last_uid"] == 7


async def test_idle_delivers_new_mail_without_waiting_for_the_poll(sm, dovecot):
    box = dovecot.settings(dovecot.user(), poll_seconds=600, idle=True)
    poller = ImapPoller(box, Inbox(sm), sm)
    async with running(poller):
        await asyncio.wait_for(poller.caught_up.wait(), 30)
        await asyncio.sleep(0.3)                       # the poller is now in IDLE
        await imap_append(box, [mail(1)])
        got = await wait_rows(sm, 1, timeout=30)       # far below the 600 s poll interval
    assert len(got) == 1


async def test_polling_works_without_idle(sm, dovecot):
    box = dovecot.settings(dovecot.user(), poll_seconds=0.2, idle=False)
    poller = ImapPoller(box, Inbox(sm), sm)
    async with running(poller):
        await asyncio.wait_for(poller.caught_up.wait(), 30)
        await imap_append(box, [mail(1), mail(2)])
        assert len(await wait_rows(sm, 2)) == 2


async def test_a_dovecot_restart_loses_and_repeats_nothing(sm, dovecot):
    box = dovecot.settings(dovecot.user())
    poller = ImapPoller(box, Inbox(sm), sm)
    poller.min_backoff = 0.2
    await imap_append(box, [mail(i) for i in range(20)])
    async with running(poller):
        await wait_rows(sm, 20)
        await asyncio.to_thread(dovecot.restart)
        await imap_append(box, [mail(i) for i in range(20, 40)])
        got = await wait_rows(sm, 40)
        await asyncio.sleep(1.0)                         # time for any wrong repeat to show up
        got = await rows(sm)
    assert len(got) == 40
    assert sorted(r.message["meta"]["uid"] for r in got) == list(range(1, 41))
    assert len({r.external_id for r in got}) == 40
    assert (await cursor(sm, poller))["last_uid"] == 40


async def test_a_changed_uidvalidity_rescans_and_deduplication_prevents_repeats(sm, mailbox):
    await imap_append(mailbox, [mail(1), mail(2, message_id=None)])    # one without a Message-ID
    poller = ImapPoller(mailbox, Inbox(sm), sm)
    async with running(poller):
        await wait_rows(sm, 2)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    async with sm() as s:                              # the server now reports another UIDVALIDITY
        row = await s.get(ChannelCursor, poller.key)
        row.value = {"uidvalidity": 1, "last_uid": 2}
        await s.commit()
    await imap_append(mailbox, [mail(3)])
    poller = ImapPoller(mailbox, Inbox(sm), sm)
    async with running(poller):
        await wait_rows(sm, 3)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    assert await count(sm) == 3
    assert poller.stats["rescans"] == 1 and poller.stats["duplicate"] == 2 and poller.stats["new"] == 1
    state = await cursor(sm, poller)
    assert state["uidvalidity"] != 1 and state["last_uid"] == 3 and state["rescans"] == 1


async def test_our_own_message_coming_back_is_ignored_but_passed(sm, mailbox):
    ours = make_message_id("20261122-CS-0001", "kesu.example")
    await imap_append(mailbox, [mail(1, message_id=ours, sender="cs@kesu.example"), mail(2)])
    poller = ImapPoller(mailbox, Inbox(sm), sm)
    async with running(poller):
        await wait_rows(sm, 1)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    assert await count(sm) == 1 and poller.stats["ignored_own"] == 1
    assert (await cursor(sm, poller))["last_uid"] == 2


async def test_unreadable_mail_is_accepted_with_its_raw_bytes_for_quarantine(sm, mailbox):
    garbage = b"this is not an e-mail at all\r\njust bytes \xff\xfe\r\n"
    await imap_append(mailbox, [garbage])
    async with running(ImapPoller(mailbox, Inbox(sm), sm)):
        [row] = await wait_rows(sm, 1)
    assert row.raw == garbage and row.external_id.startswith("sha256:")
    assert "no mail headers" in read(row).meta["parse_error"]


async def test_auto_replies_and_bounces_are_accepted_and_read_as_such(sm, mailbox):
    await imap_append(mailbox, [mail(1, extra="Auto-Submitted: auto-replied\r\n"), mail(2, sender="MAILER-DAEMON@x.cn")])
    async with running(ImapPoller(mailbox, Inbox(sm), sm)):
        got = await wait_rows(sm, 2)
    assert [read(r).kind for r in got] == [MessageKind.AUTO_REPLY] * 2


class FailingIntake:
    """An intake whose database is down: accept() raises."""

    def __init__(self):
        self.calls = 0

    async def accept(self, msg):
        self.calls += 1
        raise ConnectionError("database is down")


async def test_a_failed_commit_leaves_the_message_unread_and_the_checkpoint_where_it_was(sm, mailbox):
    await imap_append(mailbox, [mail(1), mail(2)])
    intake = FailingIntake()
    poller = ImapPoller(mailbox, intake, sm)
    with pytest.raises(ConnectionError):
        await poller.serve_once()
    assert intake.calls >= 1
    assert all("\\Seen" not in f for f in (await flags(mailbox)).values())
    assert (await cursor(sm, poller)).get("last_uid", 0) == 0
    async with running(ImapPoller(mailbox, Inbox(sm), sm)):    # the database is back
        assert len(await wait_rows(sm, 2)) == 2


class PoisonInbox(Inbox):
    """Refuses any batch that holds the message whose Message-ID says poison (say, a database constraint)."""

    async def accept_many_in(self, session, msgs):
        if any("poison" in m.external_id for m in msgs):
            raise ValueError("this row cannot be stored")
        return await super().accept_many_in(session, msgs)


async def test_one_message_that_cannot_be_stored_does_not_hold_back_those_before_it(sm, mailbox):
    await imap_append(mailbox, [mail(1), mail(2, message_id="<poison@example.cn>"), mail(3)])
    poller = ImapPoller(mailbox, PoisonInbox(sm), sm)
    with pytest.raises(ValueError):
        await poller.serve_once()
    assert [r.message["meta"]["uid"] for r in await rows(sm)] == [1]
    assert (await cursor(sm, poller))["last_uid"] == 1          # stops just before the bad one
    assert all("\\Seen" not in f for uid, f in (await flags(mailbox)).items() if uid > 1)


async def test_after_move_the_committed_messages_leave_the_folder(sm, dovecot):
    box = dovecot.settings(dovecot.user(), after="move", move_to="Processed")
    await imap_append(box, [mail(1), mail(2)])
    poller = ImapPoller(box, Inbox(sm), sm)
    async with running(poller):
        await wait_rows(sm, 2)
        await asyncio.wait_for(poller.caught_up.wait(), 30)
    assert await flags(box) == {}
    from dataclasses import replace
    assert len(await flags(replace(box, folder="Processed"))) == 2


async def test_with_postgresql_one_poller_per_mailbox_holds_the_lock(pg_url, mailbox):
    engine = make_engine(pg_url)
    pg = make_sessionmaker(engine)
    try:
        await imap_append(mailbox, [mail(1)])
        first, second = ImapPoller(mailbox, Inbox(pg), pg), ImapPoller(mailbox, Inbox(pg), pg)
        async with running(first):
            await wait_rows(pg, 1)
            await asyncio.wait_for(first.caught_up.wait(), 30)
            task = asyncio.create_task(second.serve_once())
            await asyncio.sleep(0.5)
            assert second.client is None and not second.caught_up.is_set()   # it waits for the lock
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert await count(pg) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("tls", ["starttls", "imaps"])
async def test_tls_connections_starttls_and_imaps(sm, dovecot_tls, tls):
    user = dovecot_tls.user()
    plain = dovecot_tls.settings(user)                  # APPEND over the plain port (loopback)
    await imap_append(plain, [mail(1)])
    port = dovecot_tls.tls_port if tls == "imaps" else dovecot_tls.port
    box = dovecot_tls.settings(user, tls=tls, port=port)
    poller = ImapPoller(box, Inbox(sm), sm, tls_context=dovecot_tls.client_tls_context)
    async with running(poller):
        assert len(await wait_rows(sm, 1)) == 1
    assert poller.stats["new"] == 1


def test_uid_sets_are_compressed():
    assert uid_set([5, 1, 2, 3, 7, 8, 10]) == "1:3,5,7:8,10"
    assert uid_set([4]) == "4"
