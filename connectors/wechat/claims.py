"""Who answers a message: the passive reply or the customer-service API, never both.

The passive reply (the XML in our HTTP answer) and the outbox dispatcher (customer-service API)
may run in different processes. Both race for one row in `channel_cursors`, keyed by what they
would say (ack of complaint N, welcome for event E); the first insert wins. A retry of the same
WeChat delivery finds its own claim and repeats the same answer.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ChannelCursor

PASSIVE = "passive"
API = "api"


def ack_key(number: str) -> str:
    return f"wechat:answer:ack:{number}"[:255]


def welcome_key(external_id: str) -> str:
    return f"wechat:answer:welcome:{external_id}"[:255]


async def claim(sessionmaker: async_sessionmaker[AsyncSession], key: str, by: str, msg: str | None) -> dict[str, Any]:
    """Insert the claim if nobody holds it; return the claim that holds (ours or the earlier one)."""
    value = {"by": by, "msg": msg}
    async with sessionmaker() as session:
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        await session.execute(dialect.insert(ChannelCursor).values(key=key, value=value)
                              .on_conflict_do_nothing(index_elements=["key"]))
        held = await session.scalar(select(ChannelCursor.value).where(ChannelCursor.key == key))
        await session.commit()
    return held or value
