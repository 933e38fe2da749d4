"""The agents' JSON API: register phone and walk-in complaints, list and read them, review suggestions."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

from aiohttp import web
from sqlalchemy import func, select, text

from connectors.base import InboundMessage, Sender
from models import Agent, Complaint, ComplaintMessage, Customer, LabelledExample, utcnow
from workflow import audit
from workflow.agents import issue_token, verify_password
from workflow.sla import deadlines

from .auth import department_scope, require_role, sees_contacts
from .errors import ApiError, error, json_response
from .keys import AGENT, CALENDAR, INTAKE, SESSIONMAKER, SETTINGS
from .views import CATEGORY_LABELS, complaint_detail, complaint_summary

AGENT_CHANNELS = ("phone", "walk_in")
URGENCIES = ("P0", "P1", "P2")
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
    category, urgency = body.get("category"), body.get("urgency")
    if category not in CATEGORY_LABELS:
        raise ApiError(400, f"category must be one of {', '.join(CATEGORY_LABELS)}", field="category")
    if urgency not in URGENCIES:
        raise ApiError(400, "urgency must be P0, P1 or P2", field="urgency")
    agent = request[AGENT]
    async with request.app[SESSIONMAKER]() as session:
        complaint = await load_visible(request, session)
        suggestion = complaint.suggestion or {}
        before = {"category": complaint.category, "urgency": complaint.urgency}
        session.add(LabelledExample(
            complaint_id=complaint.id, text=complaint.text, category=category, urgency=urgency,
            suggested_category=suggestion.get("category"), suggested_urgency=suggestion.get("urgency"),
            model_version=suggestion.get("model_version"), agent_id=agent.id, created_at=utcnow()))
        complaint.category, complaint.reviewed, complaint.needs_review = category, True, False
        if urgency != complaint.urgency:
            complaint.urgency = urgency
            complaint.response_due, complaint.resolve_due = deadlines(urgency, complaint.received_at,
                                                                      request.app[CALENDAR])
        after = {"category": category, "urgency": urgency}
        audit.record(session, f"agent:{agent.id}", "reviewed" if before == after else "corrected",
                     complaint_id=complaint.id, before=before, after=after)
        await session.commit()
    return json_response(complaint_summary(complaint))


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
