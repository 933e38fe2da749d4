"""The inbox: every inbound message is saved here before its source is acknowledged.

`accept()` returns only after the commit; the unique key (channel, external_id) makes a
redelivered message a DUPLICATE instead of a second complaint.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn

from connectors.base import AcceptResult, Attachment, InboundMessage, MessageKind, Sender
from models import Complaint, InboxItem, conflict_insert, read_session, utcnow, write_gate
from models.crypto import mask

log = logging.getLogger(__name__)


def message_to_dict(msg: InboundMessage) -> dict[str, Any]:
    # Built by hand: dataclasses.asdict deep-copies every value, a visible cost per webhook request.
    s = msg.sender
    return {
        "channel": msg.channel, "external_id": msg.external_id,
        "sender": {"handle": s.handle, "name": s.name, "email": s.email, "phone": s.phone},
        "text": msg.text, "received_at": msg.received_at.isoformat(), "subject": msg.subject,
        "attachments": [{"name": a.name, "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
                         "data": base64.b64encode(a.data).decode() if a.data is not None else None, "note": a.note}
                        for a in msg.attachments],
        "thread_refs": list(msg.thread_refs), "reply_to": dict(msg.reply_to), "kind": msg.kind.value,
        "meta": dict(msg.meta),
    }


def message_from_dict(d: dict[str, Any], raw: bytes | None = None) -> InboundMessage:
    return InboundMessage(
        channel=d["channel"], external_id=d["external_id"], sender=Sender(**d["sender"]), text=d["text"],
        received_at=datetime.fromisoformat(d["received_at"]), subject=d.get("subject"),
        attachments=tuple(Attachment(**{**a, "data": base64.b64decode(a["data"]) if a.get("data") else None})
                          for a in d.get("attachments", ())),
        thread_refs=tuple(d.get("thread_refs", ())), raw=raw or b"", reply_to=d.get("reply_to") or {},
        kind=MessageKind(d.get("kind", "message")), meta=d.get("meta") or {})


class Inbox:
    """`accept()` calls that arrive while a commit is under way are committed together in the
    next transaction (group commit): each caller still returns only after its own row is committed,
    but many concurrent connectors share one transaction instead of queueing for one each."""

    max_group = 64     # beyond this a bigger transaction no longer makes each message cheaper

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker
        self.engine = sessionmaker.kw["bind"]
        self.arrived = asyncio.Event()   # wakes the worker early; it also polls, so this is only a hint
        self._waiting: list[tuple[InboundMessage, asyncio.Future]] = []
        self._committer: asyncio.Task | None = None

    async def accept(self, msg: InboundMessage) -> AcceptResult:
        if not msg.channel or not msg.external_id:
            raise ValueError("an inbound message needs a channel and an external id")
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((msg, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        # A caller that gives up cancels only its own future: the message stays in the group and
        # is committed (a redelivery is then a DUPLICATE, which is what the source needs to hear).
        result = await done
        if log.isEnabledFor(logging.INFO):
            log.info("inbox %s %s:%s from %s", result.value, msg.channel, msg.external_id, mask(msg.sender.handle))
        return result

    async def _commit_waiting(self) -> None:
        gate = write_gate(self.sessionmaker)
        group: list = []
        try:
            while self._waiting:
                await self._gather()
                async with gate:           # the group is taken once the gate is ours: late comers join
                    group, self._waiting = self._waiting[:self.max_group], self._waiting[self.max_group:]
                    committed = await self._commit_group(group)
                if not committed and len(group) > 1:
                    for one in group:      # one bad message must not fail the others: commit each alone
                        async with gate:
                            await self._commit_group([one])
        except BaseException:              # shutting down: nobody may wait forever
            for _, future in group + self._waiting:
                _settle(future, exc=RuntimeError("the inbox is shutting down; the message was not accepted"))
            self._waiting = []
            raise

    async def _gather(self, rounds: int = 8) -> None:
        """Let the loop run a few rounds while messages keep arriving, so that requests read in
        the same moment share one transaction (each commit costs as much as tens of rows)."""
        for _ in range(rounds):
            waiting = len(self._waiting)
            await asyncio.sleep(0)
            if len(self._waiting) == waiting or len(self._waiting) >= self.max_group:
                return

    async def _commit_group(self, group: list[tuple[InboundMessage, asyncio.Future]]) -> bool:
        """Commit the group in one transaction (the caller holds the write gate) and settle its
        callers; False if it failed (a group of one is then settled with the error)."""
        try:
            results = await greenlet_spawn(self._commit_sync, [m for m, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
            else:
                log.warning("inbox group of %d failed (%s); committing each alone", len(group), type(exc).__name__)
            return False
        self._settle_group(group, results)
        return True

    def _commit_sync(self, msgs: list[InboundMessage]) -> list[AcceptResult]:
        # Connect, insert and commit in one pass through SQLAlchemy's async bridge (one greenlet
        # per group) instead of one for each step: the steps cost more than the SQLite calls.
        with self.engine.sync_engine.connect() as conn:
            results = _insert(conn, msgs)
            conn.commit()
        return results

    def _settle_group(self, group, results: list[AcceptResult]) -> None:
        for (_, future), result in zip(group, results):
            _settle(future, result=result)
        if AcceptResult.NEW in results:
            self.arrived.set()

    async def accept_in(self, session: AsyncSession, msg: InboundMessage) -> AcceptResult:
        """Insert within the caller's transaction (the caller commits before acknowledging)."""
        return (await self.accept_many_in(session, [msg]))[0]

    async def accept_many_in(self, session: AsyncSession | AsyncConnection,
                             msgs: list[InboundMessage]) -> list[AcceptResult]:
        conn = session if isinstance(session, AsyncConnection) else await session.connection()
        return await conn.run_sync(_insert, msgs)

    async def outcome(self, channel: str, external_id: str) -> tuple[str, str | None] | None:
        """(status, complaint number) of an accepted message, or None if never seen."""
        async with read_session(self.sessionmaker) as session:
            row = (await session.execute(
                select(InboxItem.status, Complaint.number)
                .outerjoin(Complaint, Complaint.id == InboxItem.complaint_id)
                .where(InboxItem.channel == channel, InboxItem.external_id == external_id[:255]))).first()
        return (row[0], row[1]) if row else None


@functools.cache
def _insert_statement(dialect_name: str):
    """One INSERT ... ON CONFLICT DO NOTHING RETURNING per dialect, executed for many rows
    (SQLAlchemy batches them into multi-row INSERTs). Built once, so SQLAlchemy neither builds
    nor hashes a new statement per group to find the compiled one; a statement built with
    .values(rows) would even be compiled anew for every group size."""
    table = InboxItem.__table__
    return (conflict_insert(dialect_name, table)
            .values(trace=literal_column("'[]'"))     # the same for all: in the SQL, not encoded per row
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
            .returning(table.c.channel, table.c.external_id))


def _insert(conn: Connection, msgs: list[InboundMessage]) -> list[AcceptResult]:
    """Insert the messages within the connection's transaction; NEW or DUPLICATE for each."""
    now = utcnow()
    rows = [dict(channel=m.channel, external_id=m.external_id[:255], kind=m.kind.value, status="pending",
                 message=message_to_dict(m), raw=m.raw or None, received_at=m.received_at, accepted_at=now,
                 attempts=0, next_attempt_at=now) for m in msgs]
    inserted = {tuple(r) for r in conn.execute(_insert_statement(conn.dialect.name), rows)}
    results = []
    for row in rows:
        key = (row["channel"], row["external_id"])
        results.append(AcceptResult.NEW if key in inserted else AcceptResult.DUPLICATE)
        inserted.discard(key)     # the same message twice in one group: the second is a duplicate
    return results


def _settle(future: asyncio.Future, *, result: AcceptResult | None = None, exc: Exception | None = None) -> None:
    if not future.done():
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
