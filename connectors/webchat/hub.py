"""Live delivery: the sockets connected to this process, per chat session.

A message written by this process is pushed at once. A message written by another process
(an agent's reply that went through another node, an acknowledgement sent by another node's
outbox dispatcher) is found by `poll_forever`, which looks every second for recent messages of
the sessions connected here. Each socket remembers which message ids it has had, so nothing is
shown twice whichever way it arrives.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any, AsyncContextManager, Callable, Iterable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChatMessage

from . import store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
POLL_WINDOW = timedelta(seconds=15)   # longer than any commit delay between two processes


class Subscriber:
    def __init__(self, ws: web.WebSocketResponse, session_id: int):
        self.ws = ws
        self.session_id = session_id
        self.delivered: set[int] = set()

    async def send(self, data: dict[str, Any]) -> bool:
        if self.ws.closed:
            return False
        try:
            await self.ws.send_json(data)
            return True
        except (ConnectionError, RuntimeError):   # the peer went away mid-send: it will resume later
            return False


class Hub:
    def __init__(self) -> None:
        self.subs: dict[int, set[Subscriber]] = defaultdict(set)

    def join(self, sub: Subscriber, seen: Iterable[int] = ()) -> None:
        sub.delivered.update(seen)
        self.subs[sub.session_id].add(sub)

    def leave(self, sub: Subscriber) -> None:
        subs = self.subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subs[sub.session_id]

    def connected(self, session_id: int) -> int:
        return len(self.subs.get(session_id, ()))

    async def publish(self, session_id: int, messages: Iterable[ChatMessage]) -> None:
        messages = list(messages)
        for sub in list(self.subs.get(session_id, ())):
            for m in messages:
                if m.id not in sub.delivered:
                    sub.delivered.add(m.id)
                    await sub.send(store.frame(m))

    async def send_all(self, session_id: int, data: dict[str, Any]) -> None:
        for sub in list(self.subs.get(session_id, ())):
            await sub.send(data)

    async def poll_once(self, sessionmaker: Callable[[], AsyncContextManager[AsyncSession]]) -> int:
        """Push messages other processes wrote for the sessions connected here."""
        if not self.subs:
            return 0
        async with sessionmaker() as session:
            recent = await store.recent_ids(session, list(self.subs), POLL_WINDOW)
            missing = [mid for mid, sid in recent
                       if any(mid not in sub.delivered for sub in self.subs.get(sid, ()))]
            rows = await store.messages_by_id(session, missing) if missing else []
            await session.commit()
        for m in rows:
            await self.publish(m.session_id, [m])
        return len(rows)

    async def poll_forever(self, sessionmaker: Callable[[], AsyncContextManager[AsyncSession]],
                           every: float = POLL_SECONDS) -> None:
        while True:
            try:
                await self.poll_once(sessionmaker)
            except asyncio.CancelledError:
                raise
            except Exception:   # the database may be briefly away: try again next round
                log.exception("webchat: polling for messages failed")
            await asyncio.sleep(every)
