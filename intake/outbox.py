"""The outbox dispatcher: claim due rows, send them through their channel, record the outcome.

A claim is a short committed transaction that leases the rows; sending happens outside any
transaction (no network I/O while holding locks); a lease that expires (a killed process)
makes the row due again. Transient failures retry with jittered backoff; permanent ones, or
too many attempts, end as `dead`, visible to agents.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Mapping

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import Channel, OutboundMessage, PermanentSendError, SendResult, WindowClosedError
from models import Complaint, ComplaintMessage, CustomerIdentity, OutboxItem, utcnow, write_gate
from models.crypto import mask
from workflow.loop import backoff_delay, claim_loop

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
SEND_TIMEOUT = 60.0


def channel_for(channels: Mapping[str, Channel], name: str) -> Channel | None:
    return channels.get(name) or channels.get(name.split(":", 1)[0])


class Dispatcher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], channels: Mapping[str, Channel], *,
                 batch: int = 32, max_attempts: int = 8, wake: asyncio.Event | None = None):
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.batch = batch
        self.max_attempts = max_attempts
        self.wake = wake or asyncio.Event()

    async def run_forever(self, idle: float = 0.5) -> None:
        await claim_loop(self.run_once, self.wake, idle, log, "outbox dispatch")

    async def run_once(self) -> int:
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def _claim(self) -> list[OutboundMessage]:
        now = utcnow()
        async with write_gate(self.sessionmaker).background(), self.sessionmaker() as session:
            due = or_(and_(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now),
                      and_(OutboxItem.status == "sending", OutboxItem.lease_until < now))
            stmt = select(OutboxItem).where(due).order_by(OutboxItem.id).limit(self.batch)
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.scalars(stmt)).all()
            for row in rows:
                row.status, row.lease_until, row.attempts = "sending", now + LEASE, row.attempts + 1
            claimed = [OutboundMessage(id=r.id, channel=r.channel, kind=r.kind, reply_to=r.reply_to or {},
                                       payload=r.payload or {}, dedupe_key=r.dedupe_key, attempts=r.attempts)
                       for r in rows]
            await session.commit()
        return claimed

    async def _deliver(self, item: OutboundMessage) -> None:
        channel = channel_for(self.channels, item.channel)
        try:
            if channel is None:
                raise PermanentSendError(f"no connector is configured for channel {item.channel}")
            result = await asyncio.wait_for(channel.send(item), SEND_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except WindowClosedError as exc:
            await self._fall_back(item, exc)
        except PermanentSendError as exc:
            await self._finish(item, "dead", error=f"permanent: {exc}")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if item.attempts >= self.max_attempts:
                await self._finish(item, "dead", error=f"gave up after {item.attempts} attempts: {error}")
            else:
                await self._finish(item, "pending", error=error,
                                   retry_in=backoff_delay(item.attempts, 5, 3600))
        else:
            await self._finish(item, "sent", result=result)

    async def _finish(self, item: OutboundMessage, status: str, *, error: str | None = None,
                      result: SendResult | None = None, retry_in: float | None = None) -> None:
        async with write_gate(self.sessionmaker).background(), self.sessionmaker() as session:
            row = await session.get(OutboxItem, item.id)
            row.status, row.lease_until = status, None
            if error:
                row.last_error = mask(error)[:2000]
                log.log(logging.WARNING if status == "pending" else logging.ERROR,
                        "outbox %s %s (%s): %s", item.id, status, item.channel, row.last_error)
            if retry_in is not None:
                row.next_attempt_at = utcnow() + timedelta(seconds=retry_in)
            if status == "sent":
                row.sent_at, row.external_id = utcnow(), result.external_id if result else None
                if row.complaint_id is not None:
                    session.add(ComplaintMessage(
                        complaint_id=row.complaint_id, direction="out", kind=row.kind, channel=row.channel,
                        author=item.payload.get("author", "system"), subject=item.payload.get("subject"),
                        text=item.payload.get("text", ""), message_id=row.external_id, outbox_item_id=row.id))
            await session.commit()

    async def _fall_back(self, item: OutboundMessage, exc: Exception) -> None:
        """The channel cannot reach the customer now: try their e-mail, else leave it to an agent."""
        async with write_gate(self.sessionmaker).background(), self.sessionmaker() as session:
            row = await session.get(OutboxItem, item.id)
            email = None
            if row.complaint_id is not None and "email" in self.channels:
                customer_id = await session.scalar(select(Complaint.customer_id).where(Complaint.id == row.complaint_id))
                email = await session.scalar(select(CustomerIdentity.value).where(
                    CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "email")
                    .order_by(CustomerIdentity.id).limit(1))
            row.status, row.lease_until, row.last_error = "undeliverable", None, mask(f"{exc}")[:2000]
            if email:
                session.add(OutboxItem(
                    channel="email", kind=row.kind, complaint_id=row.complaint_id,
                    reply_to={"address": email, "subject": item.payload.get("subject")}, payload=item.payload,
                    dedupe_key=f"{row.dedupe_key}:email", recipient_hash=None, status="pending", attempts=0,
                    next_attempt_at=utcnow(), created_at=utcnow()))
                row.last_error += " (sent by e-mail instead)"
            await session.commit()
        log.warning("outbox %s undeliverable on %s: %s", item.id, item.channel, "falling back to e-mail" if email else exc)
