"""The agents' console: server-rendered pages (Jinja2, autoescaped) with a little plain JavaScript.

Every form posts to a /console/... handler that calls the same console.service function as the
JSON API, then redirects back (post/redirect/get) with a short message. Every form carries the
session's CSRF token; the login form a double-submit cookie. The customer's survey page
(/survey/{token}) needs no login: the signed token is the authority.
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from sqlalchemy import select

from models import Agent, Complaint, utcnow
from workflow import audit
from workflow.agents import verify_password
from workflow.lifecycle import LABELS
from workflow.plans import MEASURES
from workflow.surveys import DIMENSION_LABELS, DIMENSIONS, SurveyError, answer, read_token

from . import service, sessions
from .auth import CSRF_FIELD
from .errors import ApiError
from .keys import AGENT, CONSOLE_SESSION, SESSIONMAKER, WORKFLOW
from .views import CATEGORY_LABELS

HERE = Path(__file__).parent
STATIC = HERE / "static"
ACTION_LABELS = {"assign": "领取/分派", "start": "开始处理", "draft_plan": "提交方案", "approve_plan": "批准方案",
                 "reject_plan": "驳回方案", "await_customer": "等待客户补充", "resume": "继续处理", "resolve": "办结",
                 "confirm": "代客户确认", "dispute": "代客户提出异议", "reopen": "重开", "record_survey": "录入回访",
                 "close": "关闭", "merge": "合并为重复", "withdraw": "撤诉"}
# Actions a simple button can take; the others have their own forms on the complaint page.
BUTTON_ACTIONS = ("start", "resume", "confirm", "reopen", "close")

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.globals.update(CATEGORY_LABELS=CATEGORY_LABELS, LABELS=LABELS, ACTION_LABELS=ACTION_LABELS, MEASURES=MEASURES,
                   QUEUES=service.QUEUES, BUTTON_ACTIONS=BUTTON_ACTIONS, DIMENSIONS=DIMENSIONS,
                   DIMENSION_LABELS=DIMENSION_LABELS)
ENV.filters["bj"] = lambda iso: _beijing(iso)

routes = web.RouteTableDef()


def _beijing(iso: str | None) -> str:
    if not iso:
        return ""
    from datetime import datetime

    from workflow.messages import local_time
    return local_time(datetime.fromisoformat(iso))


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    agent = request.get(AGENT)
    console_session = request.get(CONSOLE_SESSION)
    html = ENV.get_template(template).render(
        me=agent, csrf=console_session.csrf_token if console_session else "",
        flash=request.query.get("ok"), error=request.query.get("error"), **context)
    return web.Response(text=html, content_type="text/html", status=status)


def back(path: str, *, ok: str | None = None, error: str | None = None) -> web.HTTPSeeOther:
    query = urlencode({k: v for k, v in (("ok", ok), ("error", error)) if v})
    return web.HTTPSeeOther(path + ("?" + query if query else ""))


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str) and k != CSRF_FIELD}


def _safe_next(value: str | None) -> str:
    # only our own console paths: never an open redirect
    return value if value and value.startswith("/console") and not value.startswith("//") else "/console/"


# -- login ----------------------------------------------------------------------------------------------

@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", login_csrf=token, next=_safe_next(request.query.get("next")))
    sessions.set_cookie(response, request, sessions.LOGIN_COOKIE, token, 3600)
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    if not sessions.same(form.get(CSRF_FIELD), request.cookies.get(sessions.LOGIN_COOKIE)):
        raise web.HTTPForbidden(text="CSRF check failed: reload the login page")
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    async with request.app[SESSIONMAKER]() as session:
        agent = await session.scalar(select(Agent).where(Agent.name == name, Agent.active.is_(True)))
        if agent is None or not verify_password(agent.password_hash, password):
            audit.record(session, "system", "login_failed", detail=f"name {name[:64]!r}")
            await session.commit()
            return render(request, "login.html", status=401, login_csrf=form.get(CSRF_FIELD),
                          next=_safe_next(str(form.get("next", ""))), failed=True)
        # A session id the browser brought along is never promoted: always a fresh one.
        await sessions.revoke(session, request.cookies.get(sessions.COOKIE))
        token, _ = await sessions.open_session(session, agent, request.app[WORKFLOW].settings.session_hours)
        audit.record(session, f"agent:{agent.id}", "login")
        await session.commit()
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    sessions.set_cookie(response, request, sessions.COOKIE, token,
                        int(request.app[WORKFLOW].settings.session_hours * 3600))
    response.del_cookie(sessions.LOGIN_COOKIE, path="/")
    raise response


@routes.post("/console/logout")
async def logout(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        await sessions.revoke(session, request.cookies.get(sessions.COOKIE))
        audit.record(session, f"agent:{request[AGENT].id}", "logout")
        await session.commit()
    response = web.HTTPSeeOther("/login")
    response.del_cookie(sessions.COOKIE, path="/")
    raise response


# -- queues and lists -------------------------------------------------------------------------------------

@routes.get("/console")
@routes.get("/console/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/console/queues/mine" if request[AGENT].role == "agent" else "/console/queues/review")


@routes.get("/console/queues/{queue}")
async def queue_page(request: web.Request) -> web.Response:
    name = request.match_info["queue"]
    try:
        items = await service.queue(request.app, request[AGENT], name)
    except ApiError as exc:
        raise web.HTTPNotFound(text=exc.message) from None
    return render(request, "queue.html", queue=name, items=items)


@routes.get("/console/tasks")
async def tasks_page(request: web.Request) -> web.Response:
    return render(request, "tasks.html", tasks=await service.tasks(request.app, request[AGENT]))


@routes.get("/console/dead-letters")
async def dead_letters_page(request: web.Request) -> web.Response:
    try:
        data = await service.dead_letters(request.app, request[AGENT])
    except ApiError as exc:
        raise web.HTTPForbidden(text=exc.message) from None
    return render(request, "dead_letters.html", **data)


@routes.get("/console/complaints/{number}")
async def complaint_page(request: web.Request) -> web.Response:
    try:
        c = await service.complaint_page(request.app, request[AGENT], request.match_info["number"])
    except ApiError as exc:
        return render(request, "error.html", status=exc.status, message=exc.message)
    return render(request, "complaint.html", c=c)


# -- actions (forms) --------------------------------------------------------------------------------------

async def _run(request: web.Request, done: str, where: str, coro) -> web.Response:
    try:
        await coro
    except ApiError as exc:
        if exc.status in (403, 404) and where.startswith("/console/complaints/"):
            return render(request, "error.html", status=exc.status, message=exc.message)
        raise back(where, error=exc.message) from None
    raise back(where, ok=done)


@routes.post("/console/complaints/{number}/review")
async def review_form(request: web.Request) -> web.Response:
    form, number = await _form(request), request.match_info["number"]
    where = _safe_next(form.get("next")) if form.get("next") else f"/console/complaints/{quote(number)}"
    return await _run(request, f"{number} 已审核", where,
                      service.review(request.app, request[AGENT], number, form.get("category"), form.get("urgency")))


@routes.post("/console/complaints/{number}/reply")
async def reply_form(request: web.Request) -> web.Response:
    form, number = await _form(request), request.match_info["number"]
    return await _run(request, "已发送", f"/console/complaints/{quote(number)}",
                      service.reply(request.app, request[AGENT], number, form.get("text")))


@routes.post("/console/complaints/{number}/actions/{action}")
async def action_form(request: web.Request) -> web.Response:
    form, number, action = await _form(request), request.match_info["number"], request.match_info["action"]
    params: dict[str, Any] = {k: v for k, v in form.items() if v != ""}
    for key in ("assignee_id", "plan_id", "efficiency", "attitude", "solution"):
        if key in params:
            try:
                params[key] = int(params[key])
            except ValueError:
                raise back(f"/console/complaints/{quote(number)}", error=f"{key} 必须是数字") from None
    if action == "draft_plan":
        kinds = (await request.post()).getall("measure", [])
        params = {"measures": [{"kind": k, "detail": form.get(f"detail_{k}", ""), "amount": form.get(f"amount_{k}")}
                               for k in kinds],
                  "deadline": form.get("deadline"), "resources": form.get("resources"),
                  "estimated_cost": form.get("estimated_cost")}
    return await _run(request, ACTION_LABELS.get(action, action) + " 完成", f"/console/complaints/{quote(number)}",
                      service.act(request.app, request[AGENT], number, action, params))


@routes.post("/console/tasks/{id}/done")
async def task_form(request: web.Request) -> web.Response:
    form = await _form(request)
    try:
        task_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    return await _run(request, "任务已完成", "/console/tasks",
                      service.complete_task(request.app, request[AGENT], task_id, form.get("note") or None))


@routes.post("/console/{kind:outbox|inbox}/{id:\\d+}/{op:retry|discard}")
async def dead_letter_form(request: web.Request) -> web.Response:
    m = request.match_info
    return await _run(request, "已处理", "/console/dead-letters",
                      service.dead_letter(request.app, request[AGENT], m["kind"], int(m["id"]), m["op"]))


# -- the customer's survey (no login) ---------------------------------------------------------------------

async def _survey_complaint(request: web.Request, session) -> Complaint:
    try:
        complaint_id = read_token(request.match_info["token"])
    except SurveyError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    complaint = await session.get(Complaint, complaint_id)
    if complaint is None:
        raise web.HTTPNotFound(text="this survey link is not valid")
    return complaint


@routes.get("/survey/{token}")
async def survey_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        complaint = await _survey_complaint(request, session)
        await session.commit()
    return render(request, "survey.html", number=complaint.number, open=complaint.status == "confirmed",
                  token=request.match_info["token"])


@routes.post("/survey/{token}")
async def survey_answer(request: web.Request) -> web.Response:
    form = await request.post()
    scores = {}
    for d in DIMENSIONS:
        try:
            scores[d] = int(str(form.get(d, "")))
        except ValueError:
            scores[d] = None
    comment = str(form.get("comment") or "").strip()[:2000] or None
    async with request.app[SESSIONMAKER]() as session:
        complaint = await _survey_complaint(request, session)
        number, still_open = complaint.number, complaint.status == "confirmed"
        try:
            await answer(session, complaint, request.app[WORKFLOW], channel=complaint.channel, scores=scores,
                         comment=comment, now=utcnow())
        except (SurveyError, service.WorkflowError) as exc:
            await session.rollback()
            return render(request, "survey.html", status=400, number=number, open=still_open,
                          token=request.match_info["token"],
                          problem=str(exc))
        await session.commit()
    return render(request, "survey_done.html", number=number)


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    if request.path.startswith(("/console", "/login", "/survey")):
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_static("/console/static/", STATIC, name="console_static")
