"""What the daemon runs in the background besides intake: the scheduler and the reporting jobs."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from intake.daemon import Kesu
from models import MonthlyReport, utcnow
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from workflow.reports.period import Month


async def test_daemon_makes_last_months_report_on_start(sqlite_url, tmp_path):
    settings = daemon_settings(sqlite_url, tmp_path)
    expected = str(Month.containing(utcnow()).previous())
    async with Kesu(settings, classifier=KeywordClassifier()) as kesu:
        months = []
        for _ in range(200):
            async with kesu.runtime.sessionmaker() as s:
                months = (await s.scalars(select(MonthlyReport.month))).all()
            if months:
                break
            await asyncio.sleep(0.1)
    assert months == [expected]
