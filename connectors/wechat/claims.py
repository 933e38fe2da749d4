"""Who acknowledges a WeChat message: the passive reply or the customer-service API, never both.

The passive reply (XML in our HTTP answer) and the outbox dispatcher (customer-service API) may run
in different processes, so they agree through one row in `channel_cursors` per inbound message:

* The HTTP handler inserts ``{"by": "passive", "state": "pending", "until": t}`` *before* it
  commits the message, so the pipeline's acknowledgement row can never be sent ahead of it.
* When the complaint number arrives in time it sets ``state = "done"`` and replies with the
  acknowledgement; otherwise it sets ``state = "released"`` and answers "success".
* `send()` of that acknowledgement: no row → it claims ``{"by": "api"}`` and sends; ``done`` →
  nothing to send; ``released`` → sends; ``pending`` → waits until ``until`` (the handler's
  5-second budget), then takes over (the handler's process died or its answer was too late).

Only the request that inserted the row (its ``token``) moves it on; WeChat's retries of the same
message read it: ``done`` → the same acknowledgement again, anything else → "success".
"""
from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ChannelCursor, conflict_insert, utcnow

PASSIVE, API = "passive", "api"
PENDING, DONE, RELEASED = "pending", "done", "released"


def message_key(external_id: str) -> str:
    return f"wechat:answer:{external_id}"[:255]


def welcome_key(external_id: str) -> str:
    return f"wechat:welcome:{external_id}"[:255]


def passive_claim(until: float) -> dict[str, Any]:
    return {"by": PASSIVE, "state": PENDING, "until": until, "token": secrets.token_hex(8)}


async def claim(sessionmaker: async_sessionmaker[AsyncSession], key: str, value: dict[str, Any]) -> dict[str, Any]:
    """Insert `value` if nobody holds `key`; return what holds it (ours or the earlier claim)."""
    async with sessionmaker() as session:
        await session.execute(conflict_insert(session.bind.dialect.name, ChannelCursor).values(key=key, value=value)
                              .on_conflict_do_nothing(index_elements=["key"]))
        held = await session.scalar(select(ChannelCursor.value).where(ChannelCursor.key == key))
        await session.commit()
    return held or value


async def read(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> dict[str, Any] | None:
    async with sessionmaker() as session:
        return await session.scalar(select(ChannelCursor.value).where(ChannelCursor.key == key))


async def settle(sessionmaker: async_sessionmaker[AsyncSession], key: str, value: dict[str, Any]) -> None:
    async with sessionmaker() as session:
        await session.execute(update(ChannelCursor).where(ChannelCursor.key == key).values(value=value))
        await session.commit()


async def api_may_send(sessionmaker: async_sessionmaker[AsyncSession], key: str, *, clock=time.time,
                       poll: float = 0.05) -> bool:
    """For `send()`: True when the API should send the acknowledgement, False when the passive reply did."""
    held = await claim(sessionmaker, key, {"by": API})
    while held.get("by") == PASSIVE and held.get("state") == PENDING and clock() < float(held.get("until", 0)):
        await asyncio.sleep(min(poll, max(0.0, float(held["until"]) - clock())))
        held = await read(sessionmaker, key) or {"by": API}
    if held.get("by") == PASSIVE and held.get("state") == DONE:
        return False
    if held.get("by") != API:
        await settle(sessionmaker, key, {"by": API, "after": held.get("state")})
    return True


async def purge(sessionmaker: async_sessionmaker[AsyncSession], older_than: timedelta) -> int:
    """Forget claims nobody will ask about again (the outbox gives up on a row long before)."""
    cutoff = utcnow() - older_than
    async with sessionmaker() as session:
        result = await session.execute(delete(ChannelCursor).where(
            or_(ChannelCursor.key.like("wechat:answer:%"), ChannelCursor.key.like("wechat:welcome:%")),
            ChannelCursor.updated_at < cutoff))
        await session.commit()
    return result.rowcount or 0
