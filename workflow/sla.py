"""Service-level targets per urgency: respond round the clock, resolve on working days for P2.

Response due = received + 2 h / 4 h / 8 h (P0/P1/P2); resolution due = received + 24 h / 48 h
(P0/P1) or 7 working days on the Chinese working-day calendar (P2). Changing the urgency
recomputes both and reschedules the SLA timers. First response and resolution are stored as
minutes next to the target minutes when they happen.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, ComplaintWorkflow

from .calendar import WorkCalendar
from .records import workflow_row
from .timers import cancel_pending, ensure_timer, warning_time

URGENCIES = ("P0", "P1", "P2")


@dataclass(frozen=True)
class Target:
    respond: timedelta
    resolve_hours: int | None = None        # round-the-clock hours
    resolve_working_days: int | None = None  # on the working-day calendar


TARGETS = {
    "P0": Target(timedelta(hours=2), resolve_hours=24),
    "P1": Target(timedelta(hours=4), resolve_hours=48),
    "P2": Target(timedelta(hours=8), resolve_working_days=7),
}
RESPONSE_PROMISE = {"P0": "2小时", "P1": "4小时", "P2": "8小时"}
SLA_TIMERS = ("response_warning", "response_breach", "resolution_warning", "resolution_breach")


def deadlines(urgency: str, received_at: datetime, calendar: WorkCalendar) -> tuple[datetime, datetime]:
    """(response due, resolution due) for a complaint received at `received_at`."""
    target = TARGETS[urgency]
    respond = received_at + target.respond
    if target.resolve_working_days is not None:
        resolve = calendar.add_working_days(received_at, target.resolve_working_days)
    else:
        resolve = received_at + timedelta(hours=target.resolve_hours)
    return respond, resolve


def minutes(start: datetime, end: datetime) -> int:
    return int(round((end - start).total_seconds() / 60))


def stricter(a: str, b: str) -> str:
    return min(a, b)   # "P0" < "P1" < "P2"


async def change_urgency(session: AsyncSession, complaint: Complaint, urgency: str, calendar: WorkCalendar) -> bool:
    """Set the urgency, recompute both deadlines and reschedule the SLA timers. False if unchanged."""
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {URGENCIES}")
    if urgency == complaint.urgency:
        return False
    complaint.urgency = urgency
    complaint.response_due, complaint.resolve_due = deadlines(urgency, complaint.received_at, calendar)
    wf = await workflow_row(session, complaint)
    wf.sla_revision += 1
    await cancel_pending(session, complaint.id, SLA_TIMERS)
    await schedule_warnings(session, complaint, wf.sla_revision)
    return True


async def schedule_warnings(session: AsyncSession, complaint: Complaint, revision: int) -> None:
    """The 80 % warnings of the current deadlines; each warning schedules its breach check when it fires."""
    plan = []
    if complaint.first_response_at is None:
        plan.append(("response_warning", complaint.response_due))
    if complaint.resolved_at is None:
        plan.append(("resolution_warning", complaint.resolve_due))
    for kind, due in plan:
        await ensure_timer(session, complaint.id, kind, warning_time(complaint.received_at, due),
                           f"{kind}:{complaint.id}:r{revision}", {"deadline": due.isoformat(), "revision": revision})


def record_first_response(complaint: Complaint, wf: ComplaintWorkflow, now: datetime) -> bool:
    if complaint.first_response_at is not None:
        return False
    complaint.first_response_at = now
    wf.response_minutes = minutes(complaint.received_at, now)
    wf.response_target_minutes = minutes(complaint.received_at, complaint.response_due)
    return True


def record_resolution(complaint: Complaint, wf: ComplaintWorkflow, now: datetime) -> None:
    complaint.resolved_at = now
    wf.resolve_minutes = minutes(complaint.received_at, now)
    wf.resolve_target_minutes = minutes(complaint.received_at, complaint.resolve_due)
