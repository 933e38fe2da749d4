"""The IMAP poller: one per mailbox, run under `PullConnector.serve_forever()`.

Save before you acknowledge: a batch of messages is fetched with BODY.PEEK[] (so a failure
leaves them unread), their headers peeked at (`deferred.py`: the worker reads them in full
later), and committed to the inbox *together with* the mailbox checkpoint (UIDVALIDITY and
the last UID, a ChannelCursor row) in one transaction; only then are they flagged \\Seen (or
moved). A crash anywhere re-fetches from the checkpoint and the inbox's unique (channel,
Message-ID) turns a repeat into a DUPLICATE, so nothing is lost or registered twice. Mail
that arrived while kesu was down is simply above the checkpoint. A changed UIDVALIDITY
re-scans the whole folder (deduplicated the same way).

IDLE when the server offers it (and the mailbox allows it), polling otherwise. Any error
ends `serve_once`; `serve_forever` reconnects with jittered backoff. With PostgreSQL, a
session-level advisory lock makes sure one process polls a mailbox.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

import aioimaplib
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import AcceptResult, InboundMessage, PullConnector
from models import ChannelCursor, conflict_insert, read_session, write_gate

from .deferred import peek, unread_message
from .imap_client import IMAP4

if TYPE_CHECKING:   # settings live in intake; connectors only read them
    from intake.settings import MailboxSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 100                     # messages per UID FETCH and per transaction
COMMAND_TIMEOUT = 60.0
IDLE_MAX = 25 * 60.0            # re-issue IDLE well before the 30-minute server limit

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


class ImapError(Exception):
    """The server refused a command or the connection broke."""


class ImapPoller(PullConnector):
    min_backoff = 1.0
    max_backoff = 120.0

    def __init__(self, mailbox: MailboxSettings, intake: Any, sessionmaker: async_sessionmaker[AsyncSession], *,
                 own_addresses: frozenset[str] = frozenset(),
                 batch: int = BATCH, tls_context=None):
        self.mailbox = mailbox
        self.intake = intake
        self.sessionmaker = sessionmaker
        self.own_addresses = frozenset(a.lower() for a in own_addresses)
        self.batch = batch
        self.tls_context = tls_context        # None: the system's trusted CAs
        self._saw_exists = False              # new mail announced in a response other than IDLE's
        self.key = f"imap:{mailbox.user}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"
        self.name = f"email {mailbox.user}@{mailbox.host}/{mailbox.folder}"
        self.client: IMAP4 | None = None
        self._lost = asyncio.Event()
        self._last_queued: asyncio.Future | None = None
        # Counters for logs, tests and the benchmark.
        self.stats = {"fetched": 0, "new": 0, "duplicate": 0, "ignored_own": 0, "rescans": 0}
        self.caught_up = asyncio.Event()      # set whenever the folder has been read to its end

    # ------------------------------------------------------------------ the loop

    async def serve_once(self) -> None:
        async with _MailboxLock(self.sessionmaker, self.key) as lock:
            if not lock.acquired:
                log.info("%s: another kesu process holds this mailbox; waiting", self.name)
                await asyncio.sleep(max(self.mailbox.poll_seconds, 5.0))
                return
            await self._connect()
            try:
                uidvalidity = await self._select()
                cursor = await self._load_cursor()
                if cursor.get("uidvalidity") not in (None, uidvalidity):
                    log.warning("%s: UIDVALIDITY changed from %s to %s: re-scanning the folder "
                                "(Message-ID deduplication prevents repeats)", self.name, cursor["uidvalidity"],
                                uidvalidity)
                    cursor = {"uidvalidity": uidvalidity, "last_uid": 0,
                              "rescans": int(cursor.get("rescans", 0)) + 1}
                    self.stats["rescans"] += 1
                    await self._store_cursor(cursor)
                elif cursor.get("uidvalidity") is None:
                    cursor = {"uidvalidity": uidvalidity, "last_uid": int(cursor.get("last_uid", 0))}
                    await self._store_cursor(cursor)
                idle = self.mailbox.idle and self.client.has_capability("IDLE")
                while True:
                    await lock.check()
                    self._saw_exists = False
                    await self._ingest(cursor)
                    self.caught_up.set()
                    if self._saw_exists:
                        continue           # mail arrived while we were busy: no need to wait for it
                    if idle:
                        await self._idle()
                    else:
                        await self._sleep(self.mailbox.poll_seconds)
                        await self._run(self.client.noop())
            finally:
                await self._disconnect()

    # ------------------------------------------------------------------ IMAP

    async def _connect(self) -> None:
        mb = self.mailbox
        self._lost = asyncio.Event()
        lost = self._lost

        def on_lost(exc: Exception | None) -> None:
            lost.set()

        ctx = None
        if mb.tls == "imaps":      # IMAP4_SSL takes no conn_lost_cb; IMAP4 with a context does TLS too
            import ssl
            ctx = self.tls_context or ssl.create_default_context()
        client = IMAP4(host=mb.host, port=mb.port, timeout=COMMAND_TIMEOUT, conn_lost_cb=on_lost,
                                  ssl_context=ctx)
        self.client = client
        # aioimaplib drops an untagged "* n EXISTS" that arrives during FETCH/STORE: note it, so
        # mail that came in while we were busy is read at once instead of after the IDLE wait.
        untagged = client.protocol._untagged_response

        def spy(line: bytes):
            if line.rstrip().endswith(b"EXISTS"):
                self._saw_exists = True
            return untagged(line)

        client.protocol._untagged_response = spy
        await client.wait_hello_from_server()
        if mb.tls == "starttls":
            await self._starttls(client)
        res = await self._run(client.login(mb.user, mb.password))
        if res.result != "OK":
            raise ImapError(f"LOGIN refused for {mb.user}: {_text(res)}")
        if "failed" in _text(res).lower():     # Dovecot: "OK Logged in, but initialization failed"
            raise ImapError(f"LOGIN for {mb.user}: {_text(res)}")
        if not client.protocol.capabilities or "IDLE" not in client.protocol.capabilities:
            try:
                await self._run(client.protocol.capability())
            except Exception:  # some servers only answer CAPABILITY before LOGIN; IDLE is then just off
                pass

    async def _starttls(self, client: IMAP4) -> None:
        """aioimaplib has no STARTTLS: send it, then upgrade the protocol's transport in place."""
        import ssl
        proto = client.protocol
        res = await self._run(proto.execute(aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop)))
        if res.result != "OK":
            raise ImapError(f"STARTTLS refused: {_text(res)}")
        ctx = self.tls_context or ssl.create_default_context()
        proto.transport = await asyncio.get_running_loop().start_tls(
            proto.transport, proto, ctx, server_hostname=self.mailbox.host)
        await self._run(proto.capability())

    async def _disconnect(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if not self._lost.is_set():
                await asyncio.wait_for(client.logout(), 5)
        except Exception:  # already gone: nothing to close politely
            pass
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        for task in list(getattr(client, "tasks", ())):   # e.g. an IDLE cut short by a cancellation
            task.cancel()

    async def _select(self) -> int:
        res = await self._run(self.client.select(self.mailbox.folder))
        if res.result != "OK":
            raise ImapError(f"SELECT {self.mailbox.folder}: {_text(res)}")
        for line in res.lines:
            m = _UIDVALIDITY.search(bytes(line))
            if m:
                return int(m.group(1))
        raise ImapError(f"SELECT {self.mailbox.folder} gave no UIDVALIDITY")

    async def _run(self, awaitable: Awaitable[T], timeout: float = COMMAND_TIMEOUT) -> T:
        """Run an IMAP command, failing at once if the connection drops (aioimaplib would wait)."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise ImapError("connection lost" if self._lost.is_set() else f"no answer within {timeout:.0f}s")

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._lost.wait(), seconds)
        except asyncio.TimeoutError:
            return
        raise ImapError("connection lost")

    async def _idle(self) -> None:
        client = self.client
        wait = min(IDLE_MAX, max(self.mailbox.poll_seconds, 1.0))
        idle_task = await self._run(client.idle_start(timeout=wait + COMMAND_TIMEOUT))
        try:
            push = asyncio.ensure_future(client.wait_server_push(timeout=wait))
            try:
                await self._run(push, timeout=wait + 5)
            except (asyncio.TimeoutError, ImapError):
                if self._lost.is_set():
                    raise
        finally:
            if not self._lost.is_set():
                client.idle_done()
                try:
                    await self._run(asyncio.shield(idle_task), timeout=COMMAND_TIMEOUT)
                except asyncio.TimeoutError:
                    raise ImapError("IDLE did not end after DONE") from None
            else:
                idle_task.cancel()

    async def _search_new(self, last_uid: int) -> list[int]:
        res = await self._run(self.client.uid_search(f"UID {last_uid + 1}:*", charset=None))
        if res.result != "OK":
            raise ImapError(f"UID SEARCH: {_text(res)}")
        uids: list[int] = []
        for line in res.lines[:-1] if len(res.lines) > 1 else res.lines:
            for token in bytes(line).split():
                if token.isdigit():
                    uids.append(int(token))
        # "n:*" always includes the highest UID, even when it is below n.
        return sorted(u for u in set(uids) if u > last_uid)

    async def _fetch(self, uids: list[int]) -> list[tuple[int, datetime | None, bytes]]:
        res = await self._run(self.client.uid("fetch", uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])"))
        if res.result != "OK":
            raise ImapError(f"UID FETCH: {_text(res)}")
        return parse_fetch(res.lines)

    async def _acknowledge(self, uids: list[int]) -> None:
        """Flag \\Seen (or move) messages already committed to the inbox."""
        if not uids:
            return
        mb, client = self.mailbox, self.client
        if mb.after == "move" and mb.move_to:
            if client.has_capability("MOVE"):
                res = await self._run(client.uid("move", uid_set(uids), mb.move_to))
                if res.result != "OK" and "TRYCREATE" in _text(res):
                    await self._run(client.protocol.execute(
                        aioimaplib.Command("CREATE", client.protocol.new_tag(), mb.move_to, loop=client.protocol.loop)))
                    res = await self._run(client.uid("move", uid_set(uids), mb.move_to))
            else:
                res = await self._run(client.uid("copy", uid_set(uids), mb.move_to))
                if res.result == "OK":
                    res = await self._run(client.uid("store", uid_set(uids), "+FLAGS.SILENT", r"(\Deleted)"))
                    await self._run(client.expunge())
        else:
            res = await self._run(client.uid("store", uid_set(uids), "+FLAGS.SILENT", r"(\Seen)"))
        if res.result != "OK":
            raise ImapError(f"could not mark {len(uids)} committed message(s): {_text(res)}")

    # ------------------------------------------------------------------ ingestion

    async def _ingest(self, cursor: dict[str, Any]) -> None:
        uids = await self._search_new(int(cursor["last_uid"]))
        if not uids:
            return
        log.info("%s: %d new message(s) above UID %s", self.name, len(uids), cursor["last_uid"])
        chunks = [uids[i:i + self.batch] for i in range(0, len(uids), self.batch)]
        # On the wire: FETCH 1, FETCH 2, STORE 1, FETCH 3, STORE 2 ...: the next FETCH and the
        # previous batch's STORE are queued while a batch is committed, and each goes out as soon
        # as the one before it is answered and the loop is free (on SQLite the commit lets the
        # loop run only once). A batch is flagged only once committed. Sending the next FETCH
        # before the commit instead was measured slower.
        next_fetch = self._queued(lambda: self._fetch(chunks[0]))
        marking = None
        tasks = [next_fetch]
        try:
            for i, chunk in enumerate(chunks):
                fetched = await next_fetch
                if i + 1 < len(chunks):
                    next_fetch = self._queued(lambda following=chunks[i + 1]: self._fetch(following))
                    tasks.append(next_fetch)
                await self._commit(cursor, chunk, fetched)
                if marking is not None:
                    await marking             # the previous batch's flags: an error ends serve_once
                marking = self._queued(lambda committed=chunk: self._acknowledge(committed))
                tasks.append(marking)
            await marking
        finally:
            for task in tasks:                 # after an error: the connection is dropped anyway
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _queued(self, start: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Start an IMAP command (or a sequence of them) once the one queued before it is done.
        aioimaplib makes a FETCH or STORE wait for one already under way, but two waiting at
        once would both be sent and their responses mixed up: so they queue here, one by one."""
        previous = self._last_queued

        async def in_turn() -> T:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])   # its outcome goes to whoever awaits it
            return await start()

        task = asyncio.ensure_future(in_turn())
        self._last_queued = task
        return task

    async def _commit(self, cursor: dict[str, Any], chunk: list[int],
                      fetched: list[tuple[int, datetime | None, bytes]]) -> None:
        self.stats["fetched"] += len(fetched)
        by_uid = {uid: (when, raw) for uid, when, raw in fetched}
        mailbox = f"{self.mailbox.user}@{self.mailbox.host}/{self.mailbox.folder}"
        messages: list[tuple[int, InboundMessage | None]] = []
        for uid in chunk:
            if uid not in by_uid:      # expunged between SEARCH and FETCH
                continue
            when, raw = by_uid[uid]
            # Headers only: the worker reads the message in full once it is safe in the inbox.
            p = peek(raw, own_addresses=self.own_addresses)
            if p.ours:
                self.stats["ignored_own"] += 1
                log.info("%s: UID %s is our own message %s coming back: ignored", self.name, uid, p.message_id)
                messages.append((uid, None))
                continue
            meta = {"mailbox": mailbox, "uid": uid, "uidvalidity": cursor["uidvalidity"]}
            messages.append((uid, unread_message(raw, p, received_at=when, meta=meta)))
        last = max([int(cursor["last_uid"]), *chunk])
        try:
            results = await self._accept_all([m for _, m in messages if m is not None], {**cursor, "last_uid": last})
        except Exception as exc:
            if len(messages) <= 1:
                raise
            # One bad message must not hold back the others: commit one by one, the checkpoint
            # stopping just before the one that fails (serve_forever then retries it).
            log.warning("%s: batch of %d failed (%s: %s); committing one by one", self.name, len(messages),
                        type(exc).__name__, exc)
            results = []
            for uid, msg in messages:
                step = {**cursor, "last_uid": max(int(cursor["last_uid"]), uid)}
                results += await self._accept_all([msg] if msg is not None else [], step)
                cursor.update(step)
        for msg, result in results:
            self.stats["new" if result is AcceptResult.NEW else "duplicate"] += 1
            log.info("%s: %s %s (UID %s)", self.name, result.value, msg.external_id, msg.meta["uid"])
        cursor.update({**cursor, "last_uid": last})

    async def _accept_all(self, messages: list[InboundMessage], cursor: dict[str, Any]
                          ) -> list[tuple[InboundMessage, AcceptResult]]:
        """Commit the messages and the checkpoint in one transaction when the inbox allows it
        (one multi-row INSERT with `accept_many_in`); else accept() each, then the checkpoint."""
        inbox = getattr(self.intake, "inbox", self.intake)
        many = getattr(inbox, "accept_many_in", None)
        if many is None:
            results = [(msg, await self.intake.accept(msg)) for msg in messages]
            await self._store_cursor(cursor)
            return results
        async with write_gate(self.sessionmaker), self._engine().connect() as conn:
            results = list(zip(messages, await many(conn, messages))) if messages else []
            await _save_cursor(conn, self.key, cursor)
            await conn.commit()
        arrived = getattr(inbox, "arrived", None)
        if arrived is not None and any(r is AcceptResult.NEW for _, r in results):
            arrived.set()
        return results

    async def _load_cursor(self) -> dict[str, Any]:
        async with read_session(self.sessionmaker) as session:
            row = await session.get(ChannelCursor, self.key)
            return dict(row.value) if row is not None and row.value else {"last_uid": 0}

    async def _store_cursor(self, cursor: dict[str, Any]) -> None:
        async with write_gate(self.sessionmaker), self._engine().connect() as conn:
            await _save_cursor(conn, self.key, cursor)
            await conn.commit()

    def _engine(self) -> AsyncEngine:
        return self.sessionmaker.kw["bind"]


async def _save_cursor(conn: AsyncConnection, key: str, value: dict[str, Any]) -> None:
    """Insert or update the checkpoint: one statement (the ORM's get-then-flush took ~4 ms a batch)."""
    await conn.execute(_cursor_upsert(conn.dialect.name),
                       {"key": key, "value": dict(value), "updated_at": datetime.now(timezone.utc)})


@functools.cache
def _cursor_upsert(dialect_name: str):
    # Built once: building and compiling it anew cost ~0.5 ms a batch.
    table = ChannelCursor.__table__
    stmt = conflict_insert(dialect_name, table)
    return stmt.on_conflict_do_update(index_elements=[table.c.key],
                                      set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at})


class _MailboxLock:
    """PostgreSQL: a session-level advisory lock held by a dedicated connection while polling.
    SQLite: one process by construction, no lock."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], key: str):
        self.engine = sessionmaker.kw.get("bind")
        self.lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        self.conn = None
        self.acquired = True

    async def __aenter__(self) -> "_MailboxLock":
        if self.engine is None or self.engine.dialect.name != "postgresql":
            return self
        self.conn = await self.engine.connect()
        self.acquired = bool(await self.conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.lock_id}))
        await self.conn.commit()      # the lock is session-level: it outlives the transaction
        return self

    async def check(self) -> None:
        """Fail (and so reconnect) if the connection holding the lock is gone."""
        if self.conn is not None:
            await self.conn.execute(text("SELECT 1"))
            await self.conn.commit()

    async def __aexit__(self, *exc) -> None:
        if self.conn is None:
            return
        try:
            if self.acquired:
                await self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_id})
                await self.conn.commit()
        except Exception:  # the connection died: the server released the lock with it
            pass
        finally:
            await self.conn.close()


def uid_set(uids: list[int]) -> str:
    """1,2,3,5,7,8 -> "1:3,5,7:8"."""
    out, start, prev = [], None, None
    for u in sorted(uids):
        if start is None:
            start = prev = u
        elif u == prev + 1:
            prev = u
        else:
            out.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = u
    if start is not None:
        out.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(out)


def parse_fetch(lines: list) -> list[tuple[int, datetime | None, bytes]]:
    """(uid, internal date, raw) from aioimaplib's FETCH response lines: a line ending in
    ``{size}``, then the literal (a bytearray), then the rest of the item list."""
    out = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if isinstance(line, (bytes, bytearray)) and not isinstance(line, bytearray) and b"FETCH (" in line \
                and line.rstrip().endswith(b"}") and i + 1 < n and isinstance(lines[i + 1], bytearray):
            head = bytes(line)
            raw = bytes(lines[i + 1])
            tail = bytes(lines[i + 2]) if i + 2 < n and not isinstance(lines[i + 2], bytearray) else b""
            m = _FETCH_UID.search(head) or _FETCH_UID.search(tail)
            d = _INTERNALDATE.search(head) or _INTERNALDATE.search(tail)
            if m:
                out.append((int(m.group(1)), _internaldate(d.group(1)) if d else None, raw))
            i += 2
            continue
        i += 1
    return out


_DATE_TIME = re.compile(rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\s*$")
_MONTHS = {m: i for i, m in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), start=1)}


def _internaldate(value: bytes) -> datetime | None:
    """RFC 3501 date-time ("23-Nov-2026 17:30:00 +0800"); strptime costs more than the rest of a message."""
    m = _DATE_TIME.match(value)
    month = _MONTHS.get(m.group(2).lower()) if m else None
    if month is None:
        return None
    try:
        return datetime(int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)), int(m.group(6)),
                        tzinfo=_zone(m.group(7), m.group(8), m.group(9)))
    except ValueError:
        return None


@functools.lru_cache(maxsize=64)
def _zone(sign: bytes, hours: bytes, minutes: bytes) -> timezone:
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == b"-" else offset)


def _text(res) -> str:
    return " ".join(bytes(x).decode("utf-8", "replace") for x in res.lines if not isinstance(x, bytearray))[:300]
