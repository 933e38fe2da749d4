"""Complaint numbers: YYYYMMDD-<DEPT>-<NNNN>, serial per Shanghai day and department.

The serial row is incremented with one upsert that takes a row lock until commit, so two
processes on one PostgreSQL queue behind each other: no collision, and because the
increment rolls back with the registration, no skipped serial either.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import DailySerial, conflict_insert
from workflow.calendar import SHANGHAI

NUMBER_RE = re.compile(r"\b(\d{8})-([A-Z]{2,8})-(\d{4,})\b")


def format_number(day: str, department: str, serial: int) -> str:
    return f"{day}-{department}-{serial:04d}"


def shanghai_day(when: datetime) -> str:
    return when.astimezone(SHANGHAI).strftime("%Y%m%d")


async def reserve_serials(session: AsyncSession, day: str, department: str, count: int) -> int:
    """Reserve `count` consecutive serials; returns the first. One statement, one row lock."""
    stmt = conflict_insert(session.bind.dialect.name, DailySerial).values(day=day, department_code=department, last=count)
    stmt = stmt.on_conflict_do_update(index_elements=["day", "department_code"],
                                      set_={"last": DailySerial.last + count}).returning(DailySerial.last)
    last = (await session.execute(stmt)).scalar_one()
    return last - count + 1


async def next_number(session: AsyncSession, department: str, when: datetime) -> str:
    day = shanghai_day(when)
    return format_number(day, department, await reserve_serials(session, day, department, 1))


def find_numbers(text: str | None) -> list[str]:
    return [m.group(0) for m in NUMBER_RE.finditer(text or "")]
