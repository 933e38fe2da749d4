"""Chat sessions and messages in the database (so any kesu process can carry any conversation)."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChatMessage, ChatSession, utcnow

HISTORY_LIMIT = 200


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Line:
    """One message to store: who wrote it, and what."""
    direction: str            # in | out
    author: str               # customer, bot, agent:<id>, system
    text: str
    client_id: str | None = None
    options: tuple[str, ...] = ()


def frame(m: ChatMessage) -> dict[str, Any]:
    """A stored message as the widget receives it (the text is rendered as text, never as HTML)."""
    author = m.author.split(":", 1)[0]
    out = {"type": "message", "id": m.id, "seq": m.seq, "from": author if author in ("customer", "bot", "agent")
           else "system", "text": m.text, "at": m.created_at.isoformat()}
    if m.client_id:
        out["cid"] = m.client_id
    if m.meta and m.meta.get("options"):
        out["options"] = list(m.meta["options"])
    return out


async def create_session(session: AsyncSession, state: dict[str, Any], ip_hash: str | None) -> tuple[ChatSession, str]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ChatSession(public_id=secrets.token_hex(8), token_hash=token_hash(token), state=state, next_seq=0,
                      needs_human=False, ip_hash=ip_hash, created_at=now, last_seen_at=now)
    session.add(row)
    await session.flush()
    return row, token


async def by_token(session: AsyncSession, token: str) -> ChatSession | None:
    return await session.scalar(select(ChatSession).where(ChatSession.token_hash == token_hash(token)))


async def by_public_id(session: AsyncSession, public_id: str) -> ChatSession | None:
    return await session.scalar(select(ChatSession).where(ChatSession.public_id == public_id))


async def sessions_from_ip(session: AsyncSession, ip_hash: str, since: datetime) -> int:
    return await session.scalar(select(func.count()).select_from(ChatSession).where(
        ChatSession.ip_hash == ip_hash, ChatSession.created_at >= since))


async def by_client_id(session: AsyncSession, session_id: int, client_id: str) -> ChatMessage | None:
    return await session.scalar(select(ChatMessage).where(ChatMessage.session_id == session_id,
                                                          ChatMessage.client_id == client_id))


async def append(session: AsyncSession, session_id: int, lines: list[Line]) -> list[ChatMessage]:
    """Store lines with the session's next sequence numbers. The sequence is taken with one
    UPDATE ... RETURNING, which locks the session row: two processes never hand out the same one."""
    if not lines:
        return []
    now = utcnow()
    last = (await session.execute(
        update(ChatSession).where(ChatSession.id == session_id)
        .values(next_seq=ChatSession.next_seq + len(lines), last_seen_at=now)
        .returning(ChatSession.next_seq))).scalar_one()
    rows = [ChatMessage(session_id=session_id, seq=last - len(lines) + 1 + i, direction=line.direction,
                        author=line.author, text=line.text, client_id=line.client_id,
                        meta={"options": list(line.options)} if line.options else None, created_at=now)
            for i, line in enumerate(lines)]
    session.add_all(rows)
    await session.flush()
    return rows


async def lock(session: AsyncSession, session_id: int) -> ChatSession:
    """Load a session for a turn; on PostgreSQL its row stays locked until the commit (on SQLite
    the transaction is the only writer anyway)."""
    stmt = select(ChatSession).where(ChatSession.id == session_id).execution_options(populate_existing=True)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one()


def rows(session_id: int, lines: list[Line], after_seq: int) -> list[ChatMessage]:
    """New messages numbered after `after_seq` (the caller holds the session row)."""
    now = utcnow()
    return [ChatMessage(session_id=session_id, seq=after_seq + 1 + i, direction=line.direction, author=line.author,
                        text=line.text, client_id=line.client_id,
                        meta={"options": list(line.options)} if line.options else None, created_at=now)
            for i, line in enumerate(lines)]


async def save_seq(session: AsyncSession, session_id: int, next_seq: int) -> None:
    await session.execute(update(ChatSession).where(ChatSession.id == session_id)
                          .values(next_seq=next_seq, last_seen_at=utcnow()))


async def save_state(session: AsyncSession, session_id: int, state: dict[str, Any], needs_human: bool,
                     next_seq: int | None = None) -> None:
    values: dict[str, Any] = dict(state=state, needs_human=needs_human, last_seen_at=utcnow())
    if next_seq is not None:
        values["next_seq"] = next_seq
    await session.execute(update(ChatSession).where(ChatSession.id == session_id).values(**values))


async def history(session: AsyncSession, session_id: int, limit: int = HISTORY_LIMIT) -> list[ChatMessage]:
    rows = (await session.scalars(select(ChatMessage).where(ChatMessage.session_id == session_id)
                                  .order_by(ChatMessage.seq.desc()).limit(limit))).all()
    return list(reversed(rows))


async def recent_ids(session: AsyncSession, session_ids: list[int], window: timedelta) -> list[tuple[int, int]]:
    """(message id, session id) of recent messages of these sessions: cheap, nothing decrypted."""
    rows = await session.execute(select(ChatMessage.id, ChatMessage.session_id).where(
        ChatMessage.session_id.in_(session_ids), ChatMessage.created_at >= utcnow() - window))
    return [(r[0], r[1]) for r in rows]


async def messages_by_id(session: AsyncSession, ids: list[int]) -> list[ChatMessage]:
    return list((await session.scalars(select(ChatMessage).where(ChatMessage.id.in_(ids))
                                       .order_by(ChatMessage.session_id, ChatMessage.seq))).all())
