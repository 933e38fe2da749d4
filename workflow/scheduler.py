"""The scheduler: claims due timers like the intake worker claims inbox rows, and fires each in
the same transaction as its effects (outbox rows, escalations, tasks, state changes), marking
`fired_at`. PostgreSQL: FOR UPDATE SKIP LOCKED, so several processes share the work; SQLite:
BEGIN IMMEDIATE, one writer. A process killed mid-batch rolls the batch back: its timers are
simply due again, never half fired. Then it reads new customer replies (see replies.py).

Finding due timers is one indexed range scan (timers: fired_at, due_at), whatever the table size.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Complaint, ComplaintWorkflow, Timer, WorkTask, utcnow, write_gate

from . import outbound
from .config import WorkflowEnv
from .escalations import raise_
from .lifecycle import OPEN, SYSTEM, transition
from .loop import claim_loop
from .operations import start_progress_clock
from .progress import fire_progress, prefetch_last_contacts
from .replies import read_replies
from .surveys import make_token, survey_text
from .timers import ensure_timer

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
Handler = Callable[[AsyncSession, Timer, Complaint, WorkflowEnv, datetime], Awaitable[str]]


def _stale(timer: Timer, deadline: datetime) -> bool:
    """A timer set for a deadline that has since moved (the urgency changed)."""
    planned = timer.payload.get("deadline")
    return planned is not None and datetime.fromisoformat(planned) != deadline


def _revision(timer: Timer) -> int:
    return int(timer.payload.get("revision", 0))


async def response_warning(session, timer, complaint, env, now) -> str:
    if complaint.status not in OPEN or complaint.first_response_at is not None:
        return "answered"
    if _stale(timer, complaint.response_due):
        return "stale"
    await start_progress_clock(session, complaint, env, complaint.received_at)
    await ensure_timer(session, complaint.id, "response_breach", complaint.response_due,
                       f"response_breach:{complaint.id}:r{_revision(timer)}",
                       {"deadline": complaint.response_due.isoformat(), "revision": _revision(timer)})
    await raise_(session, complaint, "response_warning", "agent",
                 f"80% of the response time has passed; respond by {complaint.response_due.isoformat()}", now=now)
    return "warned"


async def response_breach(session, timer, complaint, env, now) -> str:
    if complaint.status not in OPEN or complaint.first_response_at is not None:
        return "answered"
    if _stale(timer, complaint.response_due):
        return "stale"
    await raise_(session, complaint, "response_breach", "supervisor",
                 f"no response by the {complaint.urgency} deadline {complaint.response_due.isoformat()}", now=now)
    return "escalated"


async def resolution_warning(session, timer, complaint, env, now) -> str:
    if complaint.status not in OPEN:
        return "not open"
    if _stale(timer, complaint.resolve_due):
        return "stale"
    await start_progress_clock(session, complaint, env, complaint.received_at)
    await ensure_timer(session, complaint.id, "resolution_breach", complaint.resolve_due,
                       f"resolution_breach:{complaint.id}:r{_revision(timer)}",
                       {"deadline": complaint.resolve_due.isoformat(), "revision": _revision(timer)})
    await raise_(session, complaint, "resolution_warning", "supervisor" if complaint.urgency == "P0" else "agent",
                 f"80% of the resolution time has passed; resolve by {complaint.resolve_due.isoformat()}", now=now)
    return "warned"


async def resolution_breach(session, timer, complaint, env, now) -> str:
    if complaint.status not in OPEN:
        return "not open"
    if _stale(timer, complaint.resolve_due):
        return "stale"
    await raise_(session, complaint, "resolution_breach", "manager",
                 f"not resolved by the {complaint.urgency} deadline {complaint.resolve_due.isoformat()}", now=now)
    return "escalated"


async def survey(session, timer, complaint, env, now) -> str:
    if complaint.status != "confirmed":
        return "not confirmed"
    link = None
    if complaint.channel == "email":
        link = f"{env.settings.base_url.rstrip('/')}/survey/{make_token(complaint.id, now)}"
    outbound.queue(session, complaint, "survey", survey_text(complaint, link), author="system", automatic=True,
                   key=f"survey:{complaint.id}:{timer.id}", now=now, extra={"link": link} if link else None)
    close_at = env.calendar.add_working_days(now, env.settings.survey_window_working_days)
    await ensure_timer(session, complaint.id, "survey_close", close_at, f"survey_close:{complaint.id}:{timer.id}")
    return "sent"


async def survey_close(session, timer, complaint, env, now) -> str:
    if complaint.status != "confirmed":
        return "answered"
    transition(session, complaint, "close", SYSTEM, now=now,
               detail=f"no survey answer within {env.settings.survey_window_working_days} working days")
    return "closed"


async def callback_due(session, timer, complaint, env, now) -> str:
    task = await session.get(WorkTask, timer.payload.get("task_id"))
    if task is None or task.status != "open":
        return "done"
    await raise_(session, complaint, "callback_overdue", "manager",
                 f"call-back task {task.id} was due {task.due_at.isoformat()}", now=now)
    return "escalated"


async def p0_watch(session, timer, complaint, env, now) -> str:
    if complaint.status not in OPEN or complaint.reviewed or not complaint.p0_watch:
        return "reviewed"
    await raise_(session, complaint, "p0_watch_unreviewed", "supervisor",
                 f"possible P0 (suggested {complaint.urgency}) not reviewed within P0's response time", now=now)
    return "escalated"


HANDLERS: dict[str, Handler] = {
    "response_warning": response_warning, "response_breach": response_breach,
    "resolution_warning": resolution_warning, "resolution_breach": resolution_breach,
    "progress": fire_progress, "survey": survey, "survey_close": survey_close, "callback_due": callback_due,
    "p0_watch": p0_watch,
}


class Scheduler:
    """`run_forever()` in the daemon; `run_once(now)` in tests and benchmarks."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], env: WorkflowEnv | None = None, *,
                 batch: int = 256, clock: Callable[[], datetime] = utcnow, wake: asyncio.Event | None = None,
                 outbox_wake: asyncio.Event | None = None, read_replies: bool = True):
        self.sessionmaker = sessionmaker
        self.env = env or WorkflowEnv()
        self.batch = batch
        self.clock = clock
        self.wake = wake or asyncio.Event()
        self.outbox_wake = outbox_wake
        self.read_replies = read_replies
        self.fired = 0

    async def run_forever(self, idle: float = 1.0) -> None:
        await claim_loop(self.run_once, self.wake, idle, log, "scheduler batch")

    async def run_once(self, now: datetime | None = None) -> int:
        """Fire one batch of due timers, then read new customer replies; returns how much was done."""
        now = now or self.clock()
        done = await self.fire_due(now)
        if self.read_replies:
            async with write_gate(self.sessionmaker).background(), self.sessionmaker() as session:
                done += await read_replies(session, self.env, now)
                await session.commit()
        if done and self.outbox_wake is not None:
            self.outbox_wake.set()
        return done

    async def fire_due(self, now: datetime | None = None) -> int:
        """Claim one batch of due timers and fire them; returns how many were claimed.

        The batch runs in one SAVEPOINT (cheap); if any timer fails, it is rolled back and the
        timers are fired again one by one, each in its own SAVEPOINT, so a bad one only delays itself."""
        now = now or self.clock()
        async with write_gate(self.sessionmaker).background(), self.sessionmaker() as session:
            stmt = (select(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= now)
                    .order_by(Timer.due_at, Timer.id).limit(self.batch))
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            timers = list((await session.scalars(stmt)).all())
            if not timers:
                await session.commit()
                return 0
            ids = [t.id for t in timers]
            complaints = await self._load(session, timers)
            try:
                async with session.begin_nested():
                    for timer in timers:
                        await self._fire(session, timer, complaints.get(timer.complaint_id), now)
                    await session.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("a timer of the batch failed; firing them one by one", exc_info=True)
                session.info.clear()
                session.expire_all()
                timers = list((await session.scalars(select(Timer).where(Timer.id.in_(ids)).order_by(
                    Timer.due_at, Timer.id).execution_options(populate_existing=True))).all())
                complaints = await self._load(session, timers)
                for timer in timers:
                    await self._fire_alone(session, timer, complaints.get(timer.complaint_id), now)
            await session.commit()
        self.fired += len(timers)
        return len(timers)

    async def _load(self, session: AsyncSession, timers: list[Timer]) -> dict[int, Complaint]:
        """The batch's complaints (locked on PostgreSQL, in id order: no deadlocks between processes),
        their workflow rows and, for progress timers, when the customer last heard from us."""
        ids = sorted({t.complaint_id for t in timers if t.complaint_id is not None})
        if not ids:
            return {}
        stmt = select(Complaint).where(Complaint.id.in_(ids)).order_by(Complaint.id) \
            .execution_options(populate_existing=True)
        if session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        complaints = {c.id: c for c in (await session.scalars(stmt)).all()}
        rows = (await session.scalars(select(ComplaintWorkflow).where(ComplaintWorkflow.complaint_id.in_(ids))
                                      .execution_options(populate_existing=True))).all()
        session.info["wf_rows"] = {**{i: None for i in ids}, **{r.complaint_id: r for r in rows}}
        progress_ids = sorted({t.complaint_id for t in timers if t.kind == "progress" and t.complaint_id})
        session.info["last_contact"] = await prefetch_last_contacts(session, progress_ids)
        return complaints

    async def _fire(self, session: AsyncSession, timer: Timer, complaint: Complaint | None, now: datetime) -> None:
        handler = HANDLERS.get(timer.kind)
        if timer.cancelled or handler is None or complaint is None:
            outcome = "cancelled" if timer.cancelled else f"no handler for {timer.kind}" if handler is None else "no complaint"
        else:
            outcome = await handler(session, timer, complaint, self.env, now)
        timer.fired_at = now
        timer.payload = {**timer.payload, "outcome": outcome}

    async def _fire_alone(self, session: AsyncSession, timer: Timer, complaint: Complaint | None,
                          now: datetime) -> None:
        try:
            async with session.begin_nested():
                await self._fire(session, timer, complaint, now)
                await session.flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            session.info.clear()          # rows a rolled-back savepoint added are gone
            await session.refresh(timer)
            if complaint is not None:
                await session.refresh(complaint)
            attempts = int(timer.payload.get("attempts", 0)) + 1
            error = f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= MAX_ATTEMPTS:
                timer.fired_at = now
                timer.payload = {**timer.payload, "attempts": attempts, "outcome": "failed", "error": error}
                log.error("timer %s (%s) failed %d times, given up: %s", timer.id, timer.kind, attempts, error)
            else:
                timer.due_at = now + timedelta(seconds=30 * 2 ** attempts)
                timer.payload = {**timer.payload, "attempts": attempts, "error": error}
                log.warning("timer %s (%s) failed, retrying: %s", timer.id, timer.kind, error)
