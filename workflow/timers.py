"""Durable timers: rows with a due time, claimed by the scheduler; never in-memory sleeps.

Every timer has a unique `dedupe_key`, so scheduling the same thing twice is a no-op, and a
timer is fired in the same transaction as its effects, so a restart neither loses nor repeats one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Timer, conflict_insert

WARNING_SHARE = 0.8   # warn when 80 % of the time to a deadline has passed


def warning_time(start: datetime, deadline: datetime) -> datetime:
    return start + (deadline - start) * WARNING_SHARE


async def ensure_timer(session: AsyncSession, complaint_id: int | None, kind: str, due_at: datetime, key: str,
                       payload: dict[str, Any] | None = None) -> bool:
    """Schedule a timer unless one with this key exists (fired, pending or cancelled): idempotent,
    one statement. True if it was added."""
    # No autoflush: the insert needs nothing pending, and a batch then flushes its rows together.
    with session.no_autoflush:
        result = await session.execute(
            conflict_insert(session.bind.dialect.name, Timer).values(complaint_id=complaint_id, kind=kind, due_at=due_at, payload=payload or {},
                                         dedupe_key=key, cancelled=False)
            .on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return result.rowcount == 1


async def cancel_pending(session: AsyncSession, complaint_id: int, kinds: Iterable[str]) -> None:
    """Cancel a complaint's timers that have not fired; the scheduler retires them without effect."""
    await session.flush()
    await session.execute(update(Timer).where(Timer.complaint_id == complaint_id, Timer.fired_at.is_(None),
                                              Timer.kind.in_(list(kinds))).values(cancelled=True)
                          .execution_options(synchronize_session="fetch"))
