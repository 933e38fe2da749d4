"""The intake as connectors and the API see it (connectors.base.IntakePort)."""
from __future__ import annotations

import asyncio

from connectors.base import AcceptResult, InboundMessage

from .inbox import Inbox
from .worker import Worker


class IntakeService:
    def __init__(self, inbox: Inbox, worker: Worker):
        self.inbox = inbox
        self.worker = worker

    async def accept(self, msg: InboundMessage) -> AcceptResult:
        return await self.inbox.accept(msg)

    async def outcome(self, channel: str, external_id: str) -> tuple[str, str | None] | None:
        return await self.inbox.outcome(channel, external_id)

    async def process_now(self, channel: str, external_id: str, timeout: float = 3.0) -> str | None:
        try:
            number = await asyncio.wait_for(self.worker.process_one(channel, external_id), timeout)
        except asyncio.TimeoutError:
            return None
        self.worker.outbox_wake.set()
        return number
