"""Agents, their passwords (argon2id: memory-hard) and API tokens (only a hash is stored)."""
from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, InvalidHashError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ROLES, Agent, ApiToken, Department, utcnow

from . import audit

_hasher = PasswordHasher()


class AgentError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_agent(session: AsyncSession, name: str, role: str, department: str | None,
                       password: str | None = None, *, actor: str = "system",
                       must_change_password: bool = False) -> tuple[Agent, str]:
    """Create an agent and a first API token; returns (agent, token). The token is shown once."""
    if role not in ROLES:
        raise AgentError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not name or len(name) > 64:
        raise AgentError("name must be 1-64 characters")
    if department and await session.get(Department, department) is None:
        raise AgentError(f"unknown department {department!r}")
    if await session.scalar(select(Agent.id).where(Agent.name == name)):
        raise AgentError(f"an agent named {name!r} already exists")
    agent = Agent(name=name, role=role, department_code=department,
                  password_hash=hash_password(password) if password else None,
                  must_change_password=must_change_password, active=True, created_at=utcnow())
    session.add(agent)
    await session.flush()
    token = await issue_token(session, agent)
    audit.record(session, actor, "agent_created", after={"agent_id": agent.id, "name": name, "role": role,
                                                        "department": department})
    return agent, token


async def issue_token(session: AsyncSession, agent: Agent) -> str:
    token = "kesu_" + secrets.token_urlsafe(32)
    session.add(ApiToken(agent_id=agent.id, token_hash=token_hash(token), created_at=utcnow()))
    return token


async def agent_for_token(session: AsyncSession, token: str) -> Agent | None:
    return await session.scalar(
        select(Agent).join(ApiToken, ApiToken.agent_id == Agent.id)
        .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None), Agent.active.is_(True)))


async def ensure_first_admin(session: AsyncSession) -> tuple[str, str] | None:
    """On an empty install: an admin with a one-time password. Returns (password, token) once."""
    if await session.scalar(select(func.count()).select_from(Agent)):
        return None
    password = secrets.token_urlsafe(12)
    _, token = await create_agent(session, "admin", "admin", None, password, must_change_password=True)
    return password, token
