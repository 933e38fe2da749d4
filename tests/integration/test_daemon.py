"""What the daemon runs in the background besides intake: the scheduler and the reporting jobs."""
from __future__ import annotations

import asyncio
import base64

from sqlalchemy import select

from intake.daemon import Kesu
from intake.settings import Settings
from models import MonthlyReport, utcnow
from tests.conftest import TEST_KEY
from tests.fakes import KeywordClassifier
from workflow.reports.period import Month


async def test_daemon_makes_last_months_report_on_start(sqlite_url, tmp_path):
    settings = Settings(database_url=sqlite_url, http_port=0, secret_key=base64.b64encode(TEST_KEY).decode(),
                        key_file=str(tmp_path / "k"), model_dir=str(tmp_path / "m"))
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
