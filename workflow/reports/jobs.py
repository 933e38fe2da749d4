"""The reporting jobs for the scheduler: the monthly report and the spike check.

Both are idempotent and cheap when there is nothing to do, so they can simply run every few
minutes in every process: the monthly report is made once per month (unique month), a spike
alerts once per day and value (unique key). A process that loses a race to another fails on the
unique key and rolls back; nothing is half done.

    jobs = ReportJobs(sessionmaker)
    await jobs.run_once(now)        # tests; the daemon runs `run_forever()` as a background task
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import utcnow

from ..spikes import SpikeRule, run_spike_check
from .monthly import run_monthly

log = logging.getLogger(__name__)


class ReportJobs:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = utcnow,
                 every: float = 600.0, rule: SpikeRule = SpikeRule()):
        self.sessionmaker, self.clock, self.every, self.rule = sessionmaker, clock, every, rule

    async def run_once(self, now: datetime | None = None) -> dict[str, object]:
        """Make last month's report if it is missing, then check spikes; each in its own transaction."""
        now = now or self.clock()
        done: dict[str, object] = {"report": None, "alerts": 0}
        try:
            async with self.sessionmaker() as session:
                report = await run_monthly(session, now)
                await session.commit()
            done["report"] = report.month if report else None
        except IntegrityError:
            log.info("another process made the monthly report first")
        try:
            async with self.sessionmaker() as session:
                done["alerts"] = len(await run_spike_check(session, now, rule=self.rule))
                await session.commit()
        except IntegrityError:
            log.info("another process stored the same spike alert first")
        return done

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reporting jobs failed; retried in %.0f s", self.every)
            await asyncio.sleep(self.every)
