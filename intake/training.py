"""Agents' reviews as training examples for the classifier."""
from __future__ import annotations

from sqlalchemy import select

from models import LabelledExample, make_engine, make_sessionmaker

from .runtime import open_keyring
from .settings import Settings


async def agent_examples(settings: Settings) -> list:
    from classifier import Example
    open_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = (await session.scalars(select(LabelledExample).order_by(LabelledExample.id))).all()
            # The latest review of a complaint wins.
            latest = {r.complaint_id: r for r in rows}
            return [Example(text=r.text, category=r.category, urgency=r.urgency, source="agent")
                    for r in latest.values()]
    finally:
        await engine.dispose()
