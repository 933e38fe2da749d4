"""Service-level targets per urgency: respond round the clock, resolve on working days for P2."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .calendar import WorkCalendar


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


def deadlines(urgency: str, received_at: datetime, calendar: WorkCalendar) -> tuple[datetime, datetime]:
    """(response due, resolution due) for a complaint received at `received_at`."""
    target = TARGETS[urgency]
    respond = received_at + target.respond
    if target.resolve_working_days is not None:
        resolve = calendar.add_working_days(received_at, target.resolve_working_days)
    else:
        resolve = received_at + timedelta(hours=target.resolve_hours)
    return respond, resolve
