"""The intake worker: claim pending inbox items, run the pipeline, finish them, in one transaction.

A batch is claimed and processed inside a single transaction (PostgreSQL: FOR UPDATE SKIP
LOCKED, so several processes share the work; SQLite: BEGIN IMMEDIATE, one writer). The steps
only add rows; the worker then numbers the batch's new complaints and writes everything in a
couple of flushes. A process killed mid-batch rolls the whole batch back: its items are simply
pending again, never half done. If the batch cannot be written (e.g. another process created
the same customer at the same moment), each item is tried again in a transaction of its own,
so one bad item only delays itself.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any, NamedTuple, Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import InboundMessage
from models import Complaint, Customer, CustomerIdentity, InboxItem, read_session, utcnow, write_gate
from models.crypto import mask
from workflow.loop import backoff_delay, claim_loop

from .batch import Batch, identity_keys_of
from .inbox import message_from_dict, message_to_dict
from .numbering import NUMBER_RE, format_number, reserve_serials, shanghai_day
from .pipeline import Context, Pipeline, Quarantine, Services
from .reading import is_unread, read_in_full
from .steps.customer import identities_of

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
        self.gate = write_gate(sessionmaker)
        self._ahead: dict[int, Ahead] = {}   # read and classified before the batch was claimed
        self.processed = 0

    async def run_forever(self, idle: float = 0.5) -> None:
        await claim_loop(self.run_once, self.wake, idle, log, "intake batch")

    async def run_once(self) -> int:
        """Claim and process one batch; returns how many items it took."""
        await self._classify_ahead()
        async with self.gate.background(), self.sessionmaker() as session:
            items = (await session.scalars(self._due(session))).all()
            if not items:
                await session.commit()
                return 0
            ids = [item.id for item in items]
            try:
                await self.process(session, items)
                await session.commit()
                failed = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await session.rollback()
                failed = True
                log.warning("batch of %d could not be written (%s); processing its items one by one",
                            len(ids), type(exc).__name__)
        if failed:
            for item_id in ids:
                await self._process_alone(item_id)
        self.outbox_wake.set()
        self.processed += len(ids)
        return len(ids)

    def _due(self, session: AsyncSession):
        stmt = (select(InboxItem).where(InboxItem.status == "pending", InboxItem.next_attempt_at <= utcnow())
                .order_by(InboxItem.id).limit(self.batch))
        if session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    async def _process_alone(self, item_id: int) -> None:
        try:
            async with self.gate.background(), self.sessionmaker() as session:
                stmt = select(InboxItem).where(InboxItem.id == item_id, InboxItem.status == "pending")
                if session.bind.dialect.name == "postgresql":
                    stmt = stmt.with_for_update(skip_locked=True)
                item = await session.scalar(stmt)
                if item is not None:
                    await self.process(session, [item])
                    await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            async with self.gate.background(), self.sessionmaker() as session:
                item = await session.get(InboxItem, item_id)
                if item is not None and item.status == "pending":
                    self._retry_later(item, exc)
                    await session.commit()

    async def process_one(self, channel: str, external_id: str) -> str | None:
        """Process one accepted item now (or wait for whoever holds it); return its complaint number."""
        failed = False
        async with self.gate, self.sessionmaker() as session:
            stmt = select(InboxItem).where(InboxItem.channel == channel, InboxItem.external_id == external_id[:255])
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update()   # waits for a worker that has it locked
            item = await session.scalar(stmt)
            if item is None:
                return None
            item_id = item.id
            if item.status == "pending":
                try:
                    await self.process(session, [item])
                    await session.commit()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await session.rollback()
                    failed = True
        if failed:
            await self._process_alone(item_id)
        async with read_session(self.sessionmaker) as session:
            number = await session.scalar(select(Complaint.number).join(
                InboxItem, InboxItem.complaint_id == Complaint.id).where(InboxItem.id == item_id))
            await session.commit()
        return number

    async def process(self, session: AsyncSession, items: Sequence[InboxItem]) -> None:
        """Run the pipeline over the items and write the results (the caller commits)."""
        contexts = self._contexts(session, items)
        if not contexts:
            await session.flush()
            return
        missing = [ctx for ctx in contexts if ctx.suggestion is None]
        if missing:
            for ctx, suggestion in zip(missing, await self._classify([ctx.msg.text or "" for ctx in missing])):
                ctx.suggestion = suggestion
        batch = await self._prefetch(session, contexts)
        with session.no_autoflush:
            for ctx in contexts:
                ctx.batch = batch
                try:
                    await self.pipeline.run(ctx)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._undo(ctx)
                    if isinstance(exc, Quarantine):
                        self._quarantine(ctx.item, str(exc), ctx.trace)
                    else:
                        self._retry_later(ctx.item, exc)
                    continue
                item = ctx.item
                item.status, item.finished_at, item.trace = "done", utcnow(), ctx.trace
                item.complaint = ctx.complaint
                if ctx.complaint is not None and not ctx.threaded:
                    ctx.complaint.trace = ctx.trace
        with session.no_autoflush:
            await self._number(session, batch)
            if session.bind.dialect.name == "sqlite":
                await _assign_ids(session)
        await session.flush()     # customers and complaints: their ids are known after this
        with session.no_autoflush:
            for customer, kind, value_hash, value in batch.identities:
                batch.insert(CustomerIdentity, customer_id=customer.id, kind=kind, value_hash=value_hash,
                             value=value, created_at=utcnow())
            for reg in batch.registrations:
                for finish in reg.finish:
                    finish()
        await session.flush()
        for model, rows in batch.rows.items():
            await session.execute(insert(model), rows)

    def _contexts(self, session: AsyncSession, items: Sequence[InboxItem]) -> list[Context]:
        contexts = []
        for item in items:
            ahead = self._ahead.pop(item.id, None)
            try:
                msg = ahead.message if ahead is not None and ahead.message is not None else \
                    message_from_dict(item.message, item.raw)
                if is_unread(msg.meta):           # committed after the look-ahead: read it now
                    msg = read_in_full(msg, self.services.settings)
            except Exception as exc:  # a stored row we cannot decode: keep it for an agent
                self._quarantine(item, f"stored message unreadable: {exc!r}", [])
                continue
            if is_unread((item.message or {}).get("meta")) and not is_unread(msg.meta):
                # The row keeps what was read, for agents (quarantine preview) and a later retry.
                item.message, item.kind = message_to_dict(msg), msg.kind.value
            contexts.append(Context(session=session, item=item, msg=msg, services=self.services,
                                    suggestion=ahead.suggestion if ahead is not None else None))
        return contexts

    async def _prefetch(self, session: AsyncSession, contexts: list[Context]) -> Batch:
        ring = self.services.keyring
        keys, numbers, recipients = set(), set(), set()
        for ctx in contexts:
            keys.update(identity_keys_of(ring, identities_of(ctx.msg)))
            numbers.update(ref for ref in ctx.msg.thread_refs if NUMBER_RE.fullmatch(ref))
            recipients.add(ring.blind_index(ctx.msg.channel, ctx.msg.sender.handle))
        oldest = min(ctx.msg.received_at for ctx in contexts)
        return await Batch.prefetch(session, keys, numbers, recipients, oldest)

    async def _number(self, session: AsyncSession, batch: Batch) -> None:
        """Give the batch's new complaints consecutive numbers: one statement per department.
        Departments are locked in a fixed order, so two processes never deadlock."""
        day = shanghai_day(utcnow())
        by_department = defaultdict(list)
        for reg in batch.registrations:
            by_department[reg.department].append(reg)
        for department in sorted(by_department):
            regs = by_department[department]
            first = await reserve_serials(session, day, department, len(regs))
            for offset, reg in enumerate(regs):
                reg.complaint.number = format_number(day, department, first + offset)
                reg.trace_entry["decision"] = reg.complaint.number

    def _undo(self, ctx: Context) -> None:
        """Take back what a failed item added (customers it created stay: they are real)."""
        ctx.batch.forget(ctx)
        for row in ctx.added:
            if row in ctx.session:
                ctx.session.expunge(row)
        ctx.added.clear()

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

    async def _classify_ahead(self) -> None:
        """Read and classify the next due items before taking the write lock, so the lock is held
        for database work only (reading mail and classifying are the slowest steps and need no lock)."""
        async with read_session(self.sessionmaker) as session:
            rows = (await session.execute(
                select(InboxItem.id, InboxItem.message).where(
                    InboxItem.status == "pending", InboxItem.next_attempt_at <= utcnow())
                .order_by(InboxItem.id).limit(self.batch))).all()
            todo = [(r.id, r.message or {}) for r in rows if r.id not in self._ahead]
            unread = [item_id for item_id, message in todo if is_unread(message.get("meta"))]
            raws = dict((await session.execute(select(InboxItem.id, InboxItem.raw).where(
                InboxItem.id.in_(unread)))).all()) if unread else {}
            await session.commit()
        if todo:
            prepared = await asyncio.get_running_loop().run_in_executor(
                None, self._prepare, [(message, raws.get(item_id)) for item_id, message in todo])
            for (item_id, _), ahead in zip(todo, prepared):
                self._ahead[item_id] = ahead
        if len(self._ahead) > 4 * self.batch:      # items another process took meanwhile
            for item_id in list(self._ahead)[:len(self._ahead) - 4 * self.batch]:
                del self._ahead[item_id]

    def _prepare(self, stored: list[tuple[dict[str, Any], bytes | None]]) -> list[Ahead]:
        """(In a thread.) Read the unread messages in full, then classify all the texts."""
        prepared: list[tuple[str | None, InboundMessage | None]] = []     # (text to classify, message read)
        for message, raw in stored:
            if not is_unread(message.get("meta")):
                prepared.append((message.get("text") or "", None))
                continue
            try:
                msg = read_in_full(message_from_dict(message, raw), self.services.settings)
            except Exception:  # _contexts reads it again in the transaction (and quarantines it there)
                prepared.append((None, None))
                continue
            prepared.append((msg.text, msg))
        texts = [text for text, _ in prepared if text is not None]
        suggestions = iter(self.classifier.suggest_many(texts) if texts else [])
        return [Ahead(next(suggestions), msg) if text is not None else Ahead(None, None) for text, msg in prepared]

    async def _classify(self, texts: list[str]) -> list[Any]:
        # Off the event loop: a slow batch must never stall the connectors.
        return await asyncio.get_running_loop().run_in_executor(None, self.classifier.suggest_many, texts)


class Ahead(NamedTuple):
    """What the look-ahead prepared for one item: its suggestion and, if it was unread, the message read."""
    suggestion: Any
    message: InboundMessage | None


async def _assign_ids(session: AsyncSession) -> None:
    """SQLite cannot return generated ids for a multi-row INSERT in order, so the ORM would insert
    new rows one statement each. The batch holds SQLite's only write lock (BEGIN IMMEDIATE), so it
    can number them itself and let them go in one statement per table."""
    for model in (Customer, Complaint):
        new = [row for row in session.new if isinstance(row, model) and row.id is None]
        if new:
            last = await session.scalar(select(func.coalesce(func.max(model.id), 0)))
            for offset, row in enumerate(new, start=1):
                row.id = last + offset
