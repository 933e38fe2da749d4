"""The intake worker: claim pending inbox items, run the pipeline, finish them, in one transaction.

A batch is claimed and processed inside a single transaction (PostgreSQL: FOR UPDATE SKIP
LOCKED, so several processes share the work; SQLite: BEGIN IMMEDIATE, one writer). Each item
runs in its own SAVEPOINT, so one bad item does not undo the others. A process killed mid-batch
rolls the whole batch back: its items are simply pending again, never half done.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import backoff_delay
from models import Complaint, InboxItem, utcnow
from models.crypto import mask

from .inbox import message_from_dict
from .pipeline import Context, Pipeline, Quarantine, Services

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], pipeline: Pipeline, services: Services,
                 classifier: Any, *, batch: int = 64, max_attempts: int = 5, wake: asyncio.Event | None = None,
                 outbox_wake: asyncio.Event | None = None):
        self.sessionmaker = sessionmaker
        self.pipeline = pipeline
        self.services = services
        self.classifier = classifier
        self.batch = batch
        self.max_attempts = max_attempts
        self.wake = wake or asyncio.Event()
        self.outbox_wake = outbox_wake or asyncio.Event()   # new outbox rows may be waiting
        self.processed = 0

    async def run_forever(self, idle: float = 0.5) -> None:
        failures = 0
        while True:
            try:
                n = await self.run_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("intake batch failed; it is rolled back and will be retried")
                await asyncio.sleep(backoff_delay(failures, 0.5, 30))
                continue
            if n == 0:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), idle)
                except asyncio.TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim and process one batch; returns how many items it finished."""
        async with self.sessionmaker() as session:
            stmt = (select(InboxItem).where(InboxItem.status == "pending", InboxItem.next_attempt_at <= utcnow())
                    .order_by(InboxItem.id).limit(self.batch))
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            items = (await session.scalars(stmt)).all()
            if not items:
                await session.commit()
                return 0
            await self.process(session, items)
            await session.commit()
        self.outbox_wake.set()
        self.processed += len(items)
        return len(items)

    async def process_one(self, channel: str, external_id: str) -> str | None:
        """Process one accepted item now (or wait for whoever holds it); return its complaint number."""
        async with self.sessionmaker() as session:
            stmt = select(InboxItem).where(InboxItem.channel == channel, InboxItem.external_id == external_id[:255])
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update()   # waits for a worker that has it locked
            item = await session.scalar(stmt)
            if item is None:
                return None
            if item.status == "pending":
                await self.process(session, [item])
            number = await _number_of(session, item)
            await session.commit()
            return number

    async def process(self, session: AsyncSession, items: Sequence[InboxItem]) -> None:
        readable = []
        for item in items:
            try:
                readable.append((item, message_from_dict(item.message, item.raw)))
            except Exception as exc:  # a stored row we cannot decode: keep it for an agent
                self._quarantine(item, f"stored message unreadable: {exc!r}", [])
        suggestions = await self._classify([m.text or "" for _, m in readable])
        for (item, msg), suggestion in zip(readable, suggestions):
            ctx = Context(session=session, item=item, msg=msg, services=self.services, suggestion=suggestion)
            try:
                async with session.begin_nested():
                    await self.pipeline.run(ctx)
                    item.status, item.finished_at, item.trace = "done", utcnow(), ctx.trace
                    item.complaint_id = ctx.complaint.id if ctx.complaint else None
                    if ctx.complaint is not None and not ctx.threaded:
                        ctx.complaint.trace = ctx.trace
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The savepoint rolled back and expired the item: reload it before recording why.
                await session.refresh(item)
                if isinstance(exc, Quarantine):
                    self._quarantine(item, str(exc), ctx.trace)
                else:
                    self._retry_later(item, exc)

    @staticmethod
    def _quarantine(item: InboxItem, reason: str, trace: list) -> None:
        item.status, item.finished_at, item.last_error = "quarantined", utcnow(), reason
        item.trace = trace + [{"step": "quarantine", "decision": reason}]
        log.warning("inbox item %s quarantined: %s", item.id, reason)

    def _retry_later(self, item: InboxItem, exc: Exception) -> None:
        item.attempts += 1
        item.last_error = mask(f"{type(exc).__name__}: {exc}")[:2000]
        if item.attempts >= self.max_attempts:
            item.status, item.finished_at = "dead", utcnow()
            log.error("inbox item %s dead after %d attempts: %s", item.id, item.attempts, item.last_error)
        else:
            item.next_attempt_at = utcnow() + timedelta(seconds=backoff_delay(item.attempts, 2, 600))
            log.warning("inbox item %s failed (attempt %d), retrying: %s", item.id, item.attempts, item.last_error)

    async def _classify(self, texts: list[str]) -> list[Any]:
        # Off the event loop: a slow batch must never stall the connectors.
        return await asyncio.get_running_loop().run_in_executor(None, self.classifier.suggest_many, texts)


async def _number_of(session: AsyncSession, item: InboxItem) -> str | None:
    if item.complaint_id is None:
        return None
    return await session.scalar(select(Complaint.number).where(Complaint.id == item.complaint_id))
