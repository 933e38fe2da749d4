"""Making, keeping and delivering monthly reports.

`run_monthly(session, now)` is the scheduled job: from the 1st of a month on, it makes the
previous month's report once (the unique month keeps a second process or a rerun from making
another), keeps its figures and leaves a notice for managers. It is cheap to call often: when
the report exists it is one indexed look-up, so a process that was down on the 1st catches up.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import MonthlyReport, StaffNotice, utcnow

from .. import audit
from .figures import monthly_figures
from .period import Month

FORMATS = {"json": "application/json", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    filename: str


def render(figures: dict[str, Any], fmt: str) -> Rendered:
    """The report in one format (CPU-bound for xlsx and html: run it in a thread from async code)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        body = json.dumps(figures, ensure_ascii=False, indent=2).encode()
    elif fmt == "xlsx":
        from .excel import workbook
        body = workbook(figures)
    else:
        from .html import page
        body = page(figures).encode()
    return Rendered(body, FORMATS[fmt], f"kesu-report-{figures['month']}.{fmt}")


async def render_async(figures: dict[str, Any], fmt: str) -> Rendered:
    return await asyncio.to_thread(render, figures, fmt)


async def kept_report(session: AsyncSession, month: Month) -> MonthlyReport | None:
    return await session.scalar(select(MonthlyReport).where(MonthlyReport.month == str(month)))


async def report_figures(session: AsyncSession, month: Month, *, now: datetime | None = None,
                         fresh: bool = False) -> dict[str, Any]:
    """A past month's kept report if there is one (unless `fresh`), else figures computed now."""
    if not fresh:
        kept = await kept_report(session, month)
        if kept is not None:
            return kept.figures
    return await monthly_figures(session, month, as_of=now or utcnow())


async def keep_report(session: AsyncSession, month: Month, *, now: datetime | None = None,
                      actor: str = "system") -> MonthlyReport:
    """Compute, keep (replacing an earlier version) and audit a month's report; notify managers once."""
    now = now or utcnow()
    figures = await monthly_figures(session, month, as_of=now)
    row = await kept_report(session, month)
    if row is None:
        row = MonthlyReport(month=str(month), as_of=now, figures=figures, generated_by=actor, generated_at=now)
        session.add(row)
    else:
        row.as_of, row.figures, row.generated_by, row.generated_at = now, figures, actor, now
    await notify_managers(session, month, figures, now)
    audit.record(session, actor, "monthly_report", at=now,
                 after={"month": str(month), "total": figures["volume"]["total"]})
    await session.flush()
    return row


async def notify_managers(session: AsyncSession, month: Month, figures: dict[str, Any], now: datetime) -> None:
    key = f"monthly_report:{month}"
    if await session.scalar(select(StaffNotice.id).where(StaffNotice.dedupe_key == key)) is not None:
        return
    vol, on_time = figures["volume"], figures["on_time"]
    rate = on_time["resolution"]["overall"]["rate"]
    body = (f"{month} 月度投诉报告已生成：投诉 {vol['total']} 件（上月 {vol['previous_total']} 件），"
            f"处理完结及时率 {'—' if rate is None else f'{rate * 100:.1f}%'}。")
    session.add(StaffNotice(role="manager", department_code=None, kind="monthly_report", title=f"{month} 月度投诉报告",
                            body=body, link=f"/api/reports/{month}?format=html", dedupe_key=key, created_at=now))


async def run_monthly(session: AsyncSession, now: datetime) -> MonthlyReport | None:
    """The scheduled job: the previous month's report, made once. None when it already exists.
    The caller commits; on PostgreSQL a concurrent process making the same report fails on the
    unique month and rolls back, which is the intended outcome."""
    month = Month.containing(now).previous()
    if await kept_report(session, month) is not None:
        return None
    return await keep_report(session, month, now=now)
