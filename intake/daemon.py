"""The composition root: wires the runtime, channels, outbox dispatcher and HTTP server together."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from console.app import build_app
from workflow.config import current_env
from workflow.reports.jobs import ReportJobs
from workflow.scheduler import Scheduler

from .outbox import Dispatcher
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)


class Kesu:
    """`async with Kesu(settings) as kesu:` runs everything until the block ends."""

    def __init__(self, settings: Settings, *, classifier=None):
        self.settings = settings
        self._classifier = classifier
        self.runtime: Runtime | None = None
        self.channels: dict = {}
        self.dispatcher: Dispatcher | None = None
        self.http_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> "Kesu":
        rt = self.runtime = await Runtime.open(self.settings, classifier=self._classifier)
        self.channels = rt.channels
        self.dispatcher = Dispatcher(rt.sessionmaker, self.channels, max_attempts=self.settings.outbox_max_attempts,
                                     wake=rt.worker.outbox_wake)
        app = build_app(sessionmaker=rt.sessionmaker, intake=rt.intake, settings=self.settings,
                        classifier=rt.classifier, calendar=rt.services.calendar)
        for channel in self.channels.values():
            if hasattr(channel, "setup_routes"):
                channel.setup_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        self.http_port = self._runner.addresses[0][1]
        jobs = [rt.worker.run_forever(self.settings.worker_idle_seconds), self.dispatcher.run_forever()]
        scheduler = Scheduler(rt.sessionmaker, current_env(), outbox_wake=rt.worker.outbox_wake)
        jobs.append(scheduler.run_forever())
        jobs.append(ReportJobs(rt.sessionmaker).run_forever())   # monthly report on the 1st, daily spike check
        for channel in self.channels.values():
            jobs.extend(channel.background() if hasattr(channel, "background") else [])
        self._tasks = [asyncio.create_task(job) for job in jobs]
        log.info("kesu listening on http://%s:%s with channels %s", self.settings.http_host, self.http_port,
                 ", ".join(self.channels) or "(none)")
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.runtime is not None:
            await self.runtime.close()

    async def __aenter__(self) -> "Kesu":
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        async with self:
            await asyncio.gather(*self._tasks)
