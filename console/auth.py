"""Authentication and role checks: bearer tokens for the JSON API, session cookies (with CSRF
tokens on every state-changing request) for the console pages and the API calls they make."""
from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from workflow.agents import agent_for_token

from . import sessions
from .errors import ApiError
from .keys import AGENT, CONSOLE_SESSION, SESSIONMAKER

PUBLIC = ("/healthz", "/api/openapi.json", "/api/tokens")
RANK = {"agent": 0, "supervisor": 1, "manager": 2, "admin": 3}
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


async def _browser(request: web.Request):
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return None
    async with request.app[SESSIONMAKER]() as session:
        found = await sessions.find(session, token)
        await session.commit()
    return found


async def _csrf_ok(request: web.Request, expected: str) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.post()).get(CSRF_FIELD)
    return sessions.same(sent, expected)


@web.middleware
async def api_auth(request: web.Request, handler):
    try:
        path = request.path
        if path.startswith("/api/") and path not in PUBLIC:
            header = request.headers.get("Authorization", "")
            if header:
                scheme, _, token = header.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
                async with request.app[SESSIONMAKER]() as session:
                    agent = await agent_for_token(session, token.strip())
                    await session.commit()
                if agent is None:
                    raise ApiError(401, "invalid or revoked token")
            else:
                found = await _browser(request)
                if found is None:
                    raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>' "
                                        "(or log in to the console)")
                console_session, agent = found
                if request.method not in sessions.SAFE_METHODS and not await _csrf_ok(request,
                                                                                    console_session.csrf_token):
                    raise ApiError(403, f"CSRF token missing or wrong: send the {CSRF_HEADER} header")
                request[CONSOLE_SESSION] = console_session
            request[AGENT] = agent
        elif (path == "/console" or path.startswith("/console/")) and not path.startswith("/console/static/"):
            found = await _browser(request)
            if found is None:
                if request.method in sessions.SAFE_METHODS:
                    raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
                raise web.HTTPForbidden(text="not logged in")
            console_session, agent = found
            if request.method not in sessions.SAFE_METHODS and not await _csrf_ok(request, console_session.csrf_token):
                raise web.HTTPForbidden(text="CSRF token missing or wrong; reload the page and try again")
            request[CONSOLE_SESSION], request[AGENT] = console_session, agent
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
