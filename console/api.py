"""The agents' JSON API: register phone and walk-in complaints, list and read them, review suggestions."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

from aiohttp import web
from sqlalchemy import func, select, text

from connectors.base import InboundMessage, Sender
from models import Agent, Complaint, ComplaintMessage, Customer
from workflow import audit
from workflow.agents import issue_token, verify_password

from . import service
from .auth import department_scope, sees_contacts
from .errors import ApiError, error, json_response
from .keys import AGENT, INTAKE, SESSIONMAKER, SETTINGS
from .openapi import OPENAPI
from .views import complaint_detail, complaint_summary

AGENT_CHANNELS = ("phone", "walk_in")
PAGE_SIZE = 50
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\- ]{5,20}$")

routes = web.RouteTableDef()


async def read_json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _optional_str(body: dict, key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string", field=key)
    if len(value) > limit:
        raise ApiError(400, f"{key} is longer than {limit} characters", field=key)
    return value.strip()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[SESSIONMAKER]() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()
    except Exception as exc:
        return error(503, f"database unavailable: {type(exc).__name__}")
    return json_response({"status": "ok"})


@routes.post("/api/tokens")
async def login_token(request: web.Request) -> web.Response:
    """Exchange an agent's name and password for an API token."""
    body = await read_json(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, "name and password are required")
    async with request.app[SESSIONMAKER]() as session:
        agent = await session.scalar(select(Agent).where(Agent.name == name, Agent.active.is_(True)))
        if agent is None or not verify_password(agent.password_hash, password):
            raise ApiError(401, "wrong name or password")
        token = await issue_token(session, agent)
        audit.record(session, f"agent:{agent.id}", "token_issued")
        await session.commit()
    return json_response({"token": token, "agent": {"id": agent.id, "name": agent.name, "role": agent.role}}, 201)


@routes.post("/api/complaints")
async def register_complaint(request: web.Request) -> web.Response:
    """Register a complaint an agent took by phone or at the counter."""
    body = await read_json(request)
    settings = request.app[SETTINGS]
    channel = body.get("channel", "phone")
    if channel not in AGENT_CHANNELS:
        raise ApiError(400, f"channel must be one of {', '.join(AGENT_CHANNELS)}", field="channel")
    text_ = body.get("text")
    if not isinstance(text_, str) or not text_.strip():
        raise ApiError(400, "text is required", field="text")
    if len(text_) > settings.max_text_chars:
        raise ApiError(400, f"text is longer than {settings.max_text_chars} characters", field="text")
    customer = body.get("customer") or {}
    if not isinstance(customer, dict):
        raise ApiError(400, "customer must be an object", field="customer")
    name = _optional_str(customer, "name", 64)
    phone = _optional_str(customer, "phone", 32)
    email = _optional_str(customer, "email", 254)
    region = _optional_str(customer, "region", 64)
    if phone and not _PHONE.match(phone):
        raise ApiError(400, "customer.phone is not a phone number", field="customer.phone")
    if email and not _EMAIL.match(email):
        raise ApiError(400, "customer.email is not an e-mail address", field="customer.email")
    product = _optional_str(body, "product", 128)
    order_no = _optional_str(body, "order_no", 64)
    agent = request[AGENT]
    key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    msg = InboundMessage(
        channel=channel, external_id=f"agent{agent.id}:{key}"[:255],
        sender=Sender(handle=phone or email or "", name=name, email=email, phone=phone),
        text=text_, received_at=datetime.now(timezone.utc), raw=json.dumps(body, ensure_ascii=False).encode(),
        meta={"product": product, "order_no": order_no, "region": region, "actor": f"agent:{agent.id}"})
    intake = request.app[INTAKE]
    await intake.accept(msg)
    number = await intake.process_now(msg.channel, msg.external_id, timeout=10.0)
    if number is None:
        status, _ = await intake.outcome(msg.channel, msg.external_id) or ("pending", None)
        return json_response({"status": status, "detail": "accepted; registration will follow"}, 202)
    async with request.app[SESSIONMAKER]() as session:
        complaint = await session.scalar(select(Complaint).where(Complaint.number == number))
    out = complaint_summary(complaint)
    out["reasons"] = list((complaint.suggestion or {}).get("reasons", []))
    return json_response(out, 201)


@routes.get("/api/complaints")
async def list_complaints(request: web.Request) -> web.Response:
    q = request.query
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        raise ApiError(400, "page must be a number", field="page") from None
    stmt = select(Complaint)
    for key, column in (("status", Complaint.status), ("category", Complaint.category),
                        ("urgency", Complaint.urgency), ("department", Complaint.department_code)):
        if q.get(key):
            stmt = stmt.where(column == q[key])
    scope = department_scope(request)
    if scope is not None:
        stmt = stmt.where(Complaint.department_code == scope)
    async with request.app[SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = (await session.scalars(stmt.order_by(Complaint.id.desc())
                                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))).all()
    return json_response({"total": total, "page": page, "page_size": PAGE_SIZE,
                          "items": [complaint_summary(c) for c in rows]})


async def load_visible(request: web.Request, session) -> Complaint:
    number = request.match_info["number"]
    complaint = await session.scalar(select(Complaint).where(Complaint.number == number))
    if complaint is None:
        raise ApiError(404, f"no complaint {number}")
    scope = department_scope(request)
    if scope is not None and complaint.department_code != scope:
        raise ApiError(403, f"complaint {number} belongs to another department")
    return complaint


@routes.get("/api/complaints/{number}")
async def get_complaint(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as session:
        complaint = await load_visible(request, session)
        customer = await session.get(Customer, complaint.customer_id) if complaint.customer_id else None
        messages = (await session.scalars(select(ComplaintMessage).where(
            ComplaintMessage.complaint_id == complaint.id).order_by(ComplaintMessage.id))).all()
    return json_response(complaint_detail(complaint, customer, list(messages), sees_contacts(request)))


@routes.post("/api/complaints/{number}/review")
async def review_suggestion(request: web.Request) -> web.Response:
    """An agent confirms or corrects the suggested category and urgency; it becomes training data."""
    body = await read_json(request)
    return json_response(await service.review(request.app, request[AGENT], request.match_info["number"],
                                              body.get("category"), body.get("urgency")))


@routes.get("/api/complaints/{number}/workflow")
async def complaint_workflow(request: web.Request) -> web.Response:
    """The complaint page's data: thread, suggestion, history and repeats, plans, tasks, audit, next actions."""
    return json_response(await service.complaint_page(request.app, request[AGENT], request.match_info["number"]))


@routes.get("/api/complaints/{number}/audit")
async def complaint_audit(request: web.Request) -> web.Response:
    page = await service.complaint_page(request.app, request[AGENT], request.match_info["number"])
    return json_response({"number": page["number"], "events": page["audit"]})


@routes.post("/api/complaints/{number}/actions/{action}")
async def complaint_action(request: web.Request) -> web.Response:
    """A lifecycle action (assign, start, draft_plan, approve_plan, reject_plan, await_customer, resume,
    resolve, confirm, dispute, reopen, record_survey, close, merge, withdraw) with its parameters."""
    body = await read_json(request) if request.can_read_body else {}
    return json_response(await service.act(request.app, request[AGENT], request.match_info["number"],
                                           request.match_info["action"], body))


@routes.post("/api/complaints/{number}/replies")
async def complaint_reply(request: web.Request) -> web.Response:
    """Write to the customer on the channel the complaint came from (phone: record the call)."""
    body = await read_json(request)
    return json_response(await service.reply(request.app, request[AGENT], request.match_info["number"],
                                             body.get("text")), 201)


@routes.get("/api/queues/{queue}")
async def get_queue(request: web.Request) -> web.Response:
    """review | mine | at-risk | disputed"""
    items = await service.queue(request.app, request[AGENT], request.match_info["queue"])
    return json_response({"queue": request.match_info["queue"], "items": items})


@routes.get("/api/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    status = request.query.get("status", "open")
    if status not in ("open", "done"):
        raise ApiError(400, "status must be open or done", field="status")
    return json_response({"tasks": await service.tasks(request.app, request[AGENT], status)})


@routes.post("/api/tasks/{id}/done")
async def task_done(request: web.Request) -> web.Response:
    body = await read_json(request) if request.can_read_body else {}
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise ApiError(400, "note must be text of at most 2000 characters", field="note")
    return json_response(await service.complete_task(request.app, request[AGENT], _int_id(request), note))


@routes.get("/api/dead-letters")
async def list_dead_letters(request: web.Request) -> web.Response:
    """Dead or undeliverable outbox rows and quarantined or dead inbox items (supervisors and above)."""
    return json_response(await service.dead_letters(request.app, request[AGENT]))


@routes.post("/api/outbox/{id}/{op}")
async def outbox_item(request: web.Request) -> web.Response:
    """op: retry | discard"""
    return json_response(await service.dead_letter(request.app, request[AGENT], "outbox", _int_id(request),
                                                   request.match_info["op"]))


@routes.post("/api/inbox/{id}/{op}")
async def inbox_item(request: web.Request) -> web.Response:
    """op: retry | discard"""
    return json_response(await service.dead_letter(request.app, request[AGENT], "inbox", _int_id(request),
                                                   request.match_info["op"]))


@routes.get("/api/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(OPENAPI)


def _int_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "no such item") from None


@web.middleware
async def api_errors(request: web.Request, handler):
    """Every API error is JSON; an unexpected one is logged and answered 500 without internals."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if request.path.startswith("/api/") or request.path == "/healthz":
            return error(exc.status, exc.reason)
        raise
