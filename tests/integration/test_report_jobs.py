"""The scheduled reporting jobs: last month's report made once on the 1st, kept, managers notified."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from models import AuditEvent, MonthlyReport, StaffNotice
from tests.integration.test_report_figures import BJ, seed_fixed_month
from workflow.reports import Month, render
from workflow.reports.jobs import ReportJobs


async def test_monthly_report_is_made_once_on_the_first_and_managers_are_notified(sessionmaker):
    async with sessionmaker() as session:
        await seed_fixed_month(session)
        await session.commit()
    jobs = ReportJobs(sessionmaker)
    assert (await jobs.run_once(datetime(2026, 10, 31, 23, 0, tzinfo=BJ)))["report"] == "2026-09"
    first = datetime(2026, 11, 1, 0, 5, tzinfo=BJ)
    assert (await jobs.run_once(first))["report"] == "2026-10"
    assert (await jobs.run_once(first + timedelta(hours=3)))["report"] is None       # kept: not made again
    assert (await jobs.run_once(first + timedelta(days=4)))["report"] is None
    async with sessionmaker() as session:
        kept = await session.scalar(select(MonthlyReport).where(MonthlyReport.month == "2026-10"))
        notices = (await session.scalars(select(StaffNotice).order_by(StaffNotice.id))).all()
        audits = await session.scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.action == "monthly_report"))
    assert kept.figures["volume"]["total"] == 8 and kept.as_of == first and kept.generated_by == "system"
    assert [(n.role, n.kind, n.title) for n in notices] == [("manager", "monthly_report", "2026-09 月度投诉报告"),
                                                             ("manager", "monthly_report", "2026-10 月度投诉报告")]
    assert "8 件" in notices[1].body and notices[1].link == "/api/reports/2026-10?format=html"
    assert audits == 2
    assert render(kept.figures, "html").filename == "kesu-report-2026-10.html"
    assert Month.containing(first).previous() == Month(2026, 10)
