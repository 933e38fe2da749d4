"""Bearer-token authentication and role checks for the JSON API."""
from __future__ import annotations

from aiohttp import web

from workflow.agents import agent_for_token

from .errors import ApiError
from .keys import AGENT, SESSIONMAKER

PUBLIC = ("/healthz", "/api/openapi.json", "/api/tokens")
RANK = {"agent": 0, "supervisor": 1, "manager": 2, "admin": 3}


@web.middleware
async def api_auth(request: web.Request, handler):
    try:
        if request.path.startswith("/api/") and request.path not in PUBLIC:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
            async with request.app[SESSIONMAKER]() as session:
                agent = await agent_for_token(session, token.strip())
                await session.commit()
            if agent is None:
                raise ApiError(401, "invalid or revoked token")
            request[AGENT] = agent
        return await handler(request)
    except ApiError as exc:
        return exc.response()


def require_role(request: web.Request, role: str) -> None:
    if RANK[request[AGENT].role] < RANK[role]:
        raise ApiError(403, f"this needs the {role} role or higher")


def department_scope(request: web.Request) -> str | None:
    """Agents and supervisors work on their own department's complaints; managers and admins on all."""
    agent = request[AGENT]
    if agent.role in ("agent", "supervisor"):
        return agent.department_code or ""   # no department: nothing to see
    return None


def sees_contacts(request: web.Request) -> bool:
    """Contact details are shown to the people who handle the complaint (its department's agents
    and supervisors); managers and admins see them masked."""
    return request[AGENT].role in ("agent", "supervisor")
