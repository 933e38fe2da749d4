"""Everything kesu needs to process messages, built once from settings (no HTTP, no tasks).

The daemon runs it in the background; CLI commands such as `kesu complaint add` use it directly.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from classifier import Classifier
from models import make_engine, make_sessionmaker
from models.crypto import Keyring, configure, load_master_key
from workflow.config import load_calendar
from workflow.organisation import ensure_defaults

from .channels import build_channels
from .inbox import Inbox
from .pipeline import Services
from .port import IntakeService
from .settings import Settings
from .steps import default_pipeline
from .worker import Worker


def open_keyring(settings: Settings) -> Keyring:
    ring = Keyring(load_master_key(settings.secret_key, settings.key_file))
    configure(ring)
    return ring


@dataclass
class Runtime:
    settings: Settings
    keyring: Keyring
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    classifier: Classifier
    inbox: Inbox
    worker: Worker
    intake: IntakeService
    services: Services
    channels: dict

    @classmethod
    async def open(cls, settings: Settings, *, classifier: Classifier | None = None) -> "Runtime":
        ring = open_keyring(settings)
        engine = make_engine(settings.database_url)
        sm = make_sessionmaker(engine)
        async with sm() as session:
            await ensure_defaults(session)
            await session.commit()
        if classifier is None:
            classifier = await asyncio.to_thread(Classifier.load, settings.model_dir,
                                                 review_threshold=settings.review_threshold)
        inbox = Inbox(sm)
        services = Services(settings=settings, calendar=load_calendar(settings.calendar_file), keyring=ring)
        worker = Worker(sm, default_pipeline(), services, classifier, batch=settings.worker_batch,
                        max_attempts=settings.worker_max_attempts, wake=inbox.arrived)
        intake = IntakeService(inbox, worker)
        # Channels are built (not started) in every process, so a worker-only process still
        # knows which channels can carry an acknowledgement.
        channels = build_channels(settings, intake, sm)
        services.outbound_channels = frozenset(channels)
        return cls(settings, ring, engine, sm, classifier, inbox, worker, intake, services, channels)

    async def close(self) -> None:
        for channel in self.channels.values():
            if hasattr(channel, "close"):
                await channel.close()
        await self.engine.dispose()
