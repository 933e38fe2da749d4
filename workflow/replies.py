"""What a customer's reply means for the lifecycle: "1" confirms a result, "2" disputes it,
numbers answer a survey on chat and WeChat, and any reply resumes a complaint that waited for them.

Customer messages are appended to complaints by the intake (threading). The scheduler reads the
new ones here; which have been read is kept in a cursor row updated in the same transaction as
the effects. Because a message id can commit after a higher one (concurrent writers on
PostgreSQL), the cursor keeps the ids read above a low-water mark that only moves past messages
older than `SETTLE`, so none is skipped and none is read twice.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChannelCursor, Complaint, ComplaintMessage, Timer, conflict_insert

from .config import WorkflowEnv
from .lifecycle import CUSTOMER, WorkflowError
from .operations import perform
from .surveys import DIMENSIONS, answer, parse_numbered_reply

CURSOR = "workflow:customer_replies"
SETTLE = timedelta(minutes=5)
BATCH = 200

_CONFIRM = re.compile(r"^\s*(?:1(?![0-9])|确认|已解决|解决了|满意|同意|认可|好的|没问题)")
_DISPUTE = re.compile(r"^\s*(?:2(?![0-9])|不满意|未解决|没解决|没有解决|不同意|不认可|不接受)")


def meaning(status: str, text: str, survey_sent: bool) -> tuple[str, dict] | None:
    """(action, params) a reply means in this state, or None (just a message for the agent)."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    if status == "resolved":
        if _DISPUTE.match(text):
            reason = re.sub(r"^\s*2\s*[,，。.:：]?\s*", "", text) or text
            return "dispute", {"reason": reason}
        if _CONFIRM.match(text):
            return "confirm", {}
    elif status == "confirmed" and survey_sent:
        parsed = parse_numbered_reply(text)
        if parsed:
            scores, comment = parsed
            return "record_survey", {**scores, "comment": comment}
    elif status == "awaiting_customer":
        return "resume", {}
    return None


async def _cursor(session: AsyncSession) -> ChannelCursor | None:
    stmt = select(ChannelCursor).where(ChannelCursor.key == CURSOR)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)   # another process is reading: leave it to them
    found = await session.scalar(stmt)
    if found is not None:
        return found
    await session.execute(conflict_insert(session.bind.dialect.name, ChannelCursor).values(key=CURSOR, value={"low": 0, "seen": []},
                                                               updated_at=datetime.now().astimezone())
                          .on_conflict_do_nothing(index_elements=["key"]))
    stmt = select(ChannelCursor).where(ChannelCursor.key == CURSOR)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)   # another process is reading: leave it to them
    return await session.scalar(stmt)


async def read_replies(session: AsyncSession, env: WorkflowEnv, now: datetime) -> int:
    """Act on customer messages not read yet; returns how many were read. The caller commits."""
    cursor = await _cursor(session)
    if cursor is None:
        return 0
    low, seen = int(cursor.value.get("low", 0)), set(cursor.value.get("seen", []))
    rows = (await session.execute(
        select(ComplaintMessage.id, ComplaintMessage.complaint_id, ComplaintMessage.text, ComplaintMessage.channel,
               ComplaintMessage.created_at)
        .where(ComplaintMessage.id > low, ComplaintMessage.direction == "in", ComplaintMessage.author == "customer",
               ComplaintMessage.kind == "message")
        .order_by(ComplaintMessage.id).limit(BATCH + len(seen)))).all()
    fresh = [r for r in rows if r.id not in seen]
    for row in fresh:
        await _act(session, row, env, now)
        seen.add(row.id)
    # Move the low-water mark past a prefix of messages that are read and old enough to be settled.
    for row in rows:
        if row.id in seen and row.created_at <= now - SETTLE:
            low = row.id
            seen.discard(row.id)
        else:
            break
    value = {"low": low, "seen": sorted(i for i in seen if i > low)}
    if value != cursor.value:      # an idle poll writes nothing
        cursor.value, cursor.updated_at = value, now
    return len(fresh)


async def _act(session: AsyncSession, row, env: WorkflowEnv, now: datetime) -> None:
    complaint = await session.get(Complaint, row.complaint_id)
    if complaint is not None:
        await _apply(session, complaint, row.text, row.channel, env, now)


async def _apply(session: AsyncSession, complaint: Complaint, text: str, channel: str, env: WorkflowEnv,
                 now: datetime) -> str | None:
    survey_sent = complaint.status == "confirmed" and await session.scalar(
        select(Timer.id).where(Timer.complaint_id == complaint.id, Timer.kind == "survey",
                               Timer.fired_at.is_not(None)).limit(1)) is not None
    found = meaning(complaint.status, text, survey_sent)
    if found is None:
        return None
    action, params = found
    try:
        async with session.begin_nested():
            if action == "record_survey":
                await answer(session, complaint, env, channel=channel, scores={d: params[d] for d in DIMENSIONS},
                             comment=params.get("comment"), now=now)
            else:
                await perform(session, complaint, action, CUSTOMER, env, params, now)
    except WorkflowError:
        return None     # e.g. a race with an agent: the message stays in the thread for them
    return action


async def customer_answer(session: AsyncSession, number: str, text: str, *, channel: str, env: WorkflowEnv,
                          now: datetime) -> str | None:
    """For channels that talk to the customer themselves (the web chat's dialogue): what `text`
    means for complaint `number` ("1" confirms a result, "2 ..." disputes it, "5 4 5" answers the
    survey), applied in the caller's transaction. Returns the action taken, or None."""
    complaint = await session.scalar(select(Complaint).where(Complaint.number == number))
    if complaint is None:
        return None
    return await _apply(session, complaint, text, channel, env, now)
