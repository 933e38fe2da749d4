"""The inbox: every inbound message is saved here before its source is acknowledged.

`accept()` returns only after the commit; the unique key (channel, external_id) makes a
redelivered message a DUPLICATE instead of a second complaint.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import AcceptResult, Attachment, InboundMessage, MessageKind, Sender
from models import Complaint, InboxItem, utcnow
from models.crypto import mask

log = logging.getLogger(__name__)


def message_to_dict(msg: InboundMessage) -> dict[str, Any]:
    d = asdict(msg)
    d.pop("raw")
    d["kind"] = msg.kind.value
    d["received_at"] = msg.received_at.isoformat()
    d["attachments"] = [{**asdict(a), "data": base64.b64encode(a.data).decode() if a.data is not None else None}
                        for a in msg.attachments]
    return d


def message_from_dict(d: dict[str, Any], raw: bytes | None = None) -> InboundMessage:
    return InboundMessage(
        channel=d["channel"], external_id=d["external_id"], sender=Sender(**d["sender"]), text=d["text"],
        received_at=datetime.fromisoformat(d["received_at"]), subject=d.get("subject"),
        attachments=tuple(Attachment(**{**a, "data": base64.b64decode(a["data"]) if a.get("data") else None})
                          for a in d.get("attachments", ())),
        thread_refs=tuple(d.get("thread_refs", ())), raw=raw or b"", reply_to=d.get("reply_to") or {},
        kind=MessageKind(d.get("kind", "message")), meta=d.get("meta") or {})


class Inbox:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker
        self.arrived = asyncio.Event()   # wakes the worker early; it also polls, so this is only a hint

    async def accept(self, msg: InboundMessage) -> AcceptResult:
        if not msg.channel or not msg.external_id:
            raise ValueError("an inbound message needs a channel and an external id")
        async with self.sessionmaker() as session:
            result = await self.accept_in(session, msg)
            await session.commit()
        if result is AcceptResult.NEW:
            self.arrived.set()
        log.info("inbox %s %s:%s from %s", result.value, msg.channel, msg.external_id, mask(msg.sender.handle))
        return result

    async def accept_in(self, session: AsyncSession, msg: InboundMessage) -> AcceptResult:
        """Insert within the caller's transaction (the caller commits before acknowledging)."""
        values = dict(channel=msg.channel, external_id=msg.external_id[:255], kind=msg.kind.value,
                      status="pending", message=message_to_dict(msg), raw=msg.raw or None,
                      received_at=msg.received_at, accepted_at=utcnow(), attempts=0, next_attempt_at=utcnow(),
                      trace=[])
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(InboxItem).values(**_bind(values)).on_conflict_do_nothing(
            index_elements=["channel", "external_id"])
        res = await session.execute(stmt)
        return AcceptResult.NEW if res.rowcount == 1 else AcceptResult.DUPLICATE

    async def outcome(self, channel: str, external_id: str) -> tuple[str, str | None] | None:
        """(status, complaint number) of an accepted message, or None if never seen."""
        async with self.sessionmaker() as session:
            row = (await session.execute(
                select(InboxItem.status, Complaint.number)
                .outerjoin(Complaint, Complaint.id == InboxItem.complaint_id)
                .where(InboxItem.channel == channel, InboxItem.external_id == external_id[:255]))).first()
        return (row[0], row[1]) if row else None


def _bind(values: dict[str, Any]) -> dict[str, Any]:
    # Core inserts bypass the ORM, but column types (encryption, UTC) still apply by column.
    return values
