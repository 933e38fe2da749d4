"""Browser sessions for the console: a random cookie (only its SHA-256 is stored), a CSRF token
per session, a fresh session id at every login (no fixation), and a login form protected by a
double-submit cookie."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select, update

from models import Agent, ConsoleSession, utcnow

COOKIE = "kesu_session"
LOGIN_COOKIE = "kesu_login"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def open_session(session, agent: Agent, hours: float) -> tuple[str, ConsoleSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(token_hash=_hash(token), agent_id=agent.id, csrf_token=secrets.token_urlsafe(32),
                         created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(row)
    return token, row


async def find(session, token: str | None) -> tuple[ConsoleSession, Agent] | None:
    if not token or len(token) > 128:
        return None
    row = (await session.execute(
        select(ConsoleSession, Agent).join(Agent, Agent.id == ConsoleSession.agent_id)
        .where(ConsoleSession.token_hash == _hash(token), ConsoleSession.revoked_at.is_(None),
               ConsoleSession.expires_at > utcnow(), Agent.active.is_(True)))).first()
    return (row[0], row[1]) if row else None


async def revoke(session, token: str | None) -> None:
    if token:
        await session.execute(update(ConsoleSession).where(ConsoleSession.token_hash == _hash(token),
                                                           ConsoleSession.revoked_at.is_(None))
                              .values(revoked_at=utcnow()))


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
