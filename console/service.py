"""What console pages and the JSON API both do: one function per action, so the two never differ.

Each takes the application and the acting agent, runs in its own transaction, and raises
ApiError (with the HTTP status) when refused.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, or_, select

from models import (Agent, AuditEvent, Complaint, ComplaintMessage, ComplaintWorkflow, Customer, Escalation, InboxItem,
                    OutboxItem, WorkTask, utcnow, write_gate)
from models.crypto import mask
from workflow import audit, operations, plans
from workflow.lifecycle import LABELS, OPEN, TERMINAL, Actor, WorkflowError, available
from workflow.records import lock_complaint

from .errors import ApiError
from .keys import SESSIONMAKER, WORKFLOW
from .views import complaint_detail, complaint_summary

QUEUES = {"review": "需审核", "mine": "我的队列", "at-risk": "SLA风险", "disputed": "有异议"}
AT_RISK_HOURS = 24
LIMIT = 200


def actor_of(agent: Agent) -> Actor:
    return Actor.of(agent)


def scope_of(agent: Agent) -> str | None:
    return (agent.department_code or "") if agent.role in ("agent", "supervisor") else None


def shows_contacts(agent: Agent) -> bool:
    return agent.role in ("agent", "supervisor")


@asynccontextmanager
async def _refusals():
    try:
        yield
    except WorkflowError as exc:
        extra = {"field": exc.field} if exc.field else {}
        raise ApiError(exc.status, exc.reason, **extra) from None


async def _visible(session, agent: Agent, number: str, *, lock: bool = False) -> Complaint:
    complaint = (await lock_complaint(session, number=number) if lock else
                 await session.scalar(select(Complaint).where(Complaint.number == number)))
    if complaint is None:
        raise ApiError(404, f"no complaint {number}")
    scope = scope_of(agent)
    if scope is not None and complaint.department_code != scope:
        raise ApiError(403, f"complaint {number} belongs to another department")
    return complaint


# -- actions ------------------------------------------------------------------------------------------

async def act(app: web.Application, agent: Agent, number: str, action: str, params: dict[str, Any]) -> dict:
    async with write_gate(app[SESSIONMAKER]), app[SESSIONMAKER]() as session:
        complaint = await _visible(session, agent, number, lock=True)
        async with _refusals():
            await operations.perform(session, complaint, action, actor_of(agent), app[WORKFLOW], params)
        await session.commit()
    return complaint_summary(complaint)


async def review(app: web.Application, agent: Agent, number: str, category: Any, urgency: Any) -> dict:
    """Accept or correct a suggestion (the classifier learns from it)."""
    async with write_gate(app[SESSIONMAKER]), app[SESSIONMAKER]() as session:
        complaint = await _visible(session, agent, number, lock=True)
        async with _refusals():
            await operations.review(session, complaint, agent, app[WORKFLOW], category, urgency)
        await session.commit()
    return complaint_summary(complaint)


async def reply(app: web.Application, agent: Agent, number: str, text: Any) -> dict:
    async with write_gate(app[SESSIONMAKER]), app[SESSIONMAKER]() as session:
        complaint = await _visible(session, agent, number, lock=True)
        async with _refusals():
            await operations.reply(session, complaint, actor_of(agent), text, utcnow())
        await session.commit()
    return complaint_summary(complaint)


async def complete_task(app: web.Application, agent: Agent, task_id: int, note: str | None) -> dict:
    from workflow.callbacks import complete
    async with write_gate(app[SESSIONMAKER]), app[SESSIONMAKER]() as session:
        task = await session.get(WorkTask, task_id)
        if task is None:
            raise ApiError(404, f"no task {task_id}")
        complaint = await _visible(session, agent, (await session.get(Complaint, task.complaint_id)).number, lock=True)
        async with _refusals():
            await complete(session, task, complaint, actor_of(agent), note, utcnow())
        await session.commit()
    return task_view(task, complaint)


async def dead_letter(app: web.Application, agent: Agent, kind: str, item_id: int, op: str) -> dict:
    """Retry or discard a dead outbox row or a quarantined inbox item (supervisors and above), audited."""
    if agent.role not in ("supervisor", "manager", "admin"):
        raise ApiError(403, "this needs the supervisor role or higher")
    if op not in ("retry", "discard"):
        raise ApiError(404, f"unknown operation {op}")
    model = OutboxItem if kind == "outbox" else InboxItem
    async with write_gate(app[SESSIONMAKER]), app[SESSIONMAKER]() as session:
        row = await session.get(model, item_id)
        if row is None:
            raise ApiError(404, f"no {kind} item {item_id}")
        stuck = ("dead", "undeliverable") if kind == "outbox" else ("quarantined", "dead")
        if row.status not in stuck:
            raise ApiError(409, f"{kind} item {item_id} is {row.status}, not waiting for an agent")
        if row.complaint_id is not None:
            await _visible(session, agent, (await session.get(Complaint, row.complaint_id)).number)
        elif kind == "outbox" and agent.role == "supervisor":
            raise ApiError(403, "this needs the manager role or higher")
        before = {"status": row.status, "attempts": row.attempts}
        if op == "retry":
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
        else:
            row.status = "suppressed" if kind == "outbox" else "discarded"
        audit.record(session, f"agent:{agent.id}", f"{kind}_{op}", complaint_id=row.complaint_id,
                     before={kind: item_id, **before}, after={kind: item_id, "status": row.status})
        await session.commit()
    return {"id": item_id, "kind": kind, "status": row.status}


# -- reading ------------------------------------------------------------------------------------------

def _scoped(stmt, agent: Agent):
    scope = scope_of(agent)
    return stmt if scope is None else stmt.where(Complaint.department_code == scope)


def _time_left(c: Complaint, now) -> float:
    due = c.resolve_due if c.first_response_at is not None else min(c.response_due, c.resolve_due)
    return (due - now).total_seconds()


def queue_item(c: Complaint, now) -> dict:
    out = complaint_summary(c)
    out["status_label"] = LABELS.get(c.status, c.status)
    out["reasons"] = list((c.suggestion or {}).get("reasons", []))
    out["suggested_category"] = (c.suggestion or {}).get("category")
    out["suggested_urgency"] = (c.suggestion or {}).get("urgency")
    out["seconds_left"] = int(_time_left(c, now))
    out["assignee_id"] = c.assignee_id
    return out


async def queue(app: web.Application, agent: Agent, name: str) -> list[dict]:
    now = utcnow()
    if name == "review":
        # Possible P0s first (a missed P0 is the worst error), then the least confident
        # suggestions: the ones most likely wrong.
        stmt = (select(Complaint).where(Complaint.reviewed.is_(False), Complaint.status.not_in(TERMINAL))
                .order_by(Complaint.p0_watch.desc(), Complaint.needs_review.desc(),
                          Complaint.category_confidence, Complaint.id))
    elif name == "mine":
        stmt = (select(Complaint).where(Complaint.assignee_id == agent.id, Complaint.status.not_in(TERMINAL))
                .order_by(Complaint.resolve_due))
    elif name == "at-risk":
        horizon = now + timedelta(hours=AT_RISK_HOURS)
        stmt = (select(Complaint).where(Complaint.status.in_(OPEN), or_(
            Complaint.resolve_due <= horizon,
            and_(Complaint.first_response_at.is_(None), Complaint.response_due <= horizon)))
            .order_by(Complaint.response_due))
    elif name == "disputed":
        stmt = select(Complaint).where(Complaint.status == "disputed").order_by(Complaint.updated_at)
    else:
        raise ApiError(404, f"no queue {name}; queues: {', '.join(QUEUES)}")
    async with app[SESSIONMAKER]() as session:
        rows = list((await session.scalars(_scoped(stmt, agent).limit(LIMIT))).all())
        await session.commit()
    items = [queue_item(c, now) for c in rows]
    if name == "review":
        items.sort(key=lambda i: (not i["p0_watch"], not i["needs_review"],
                                  min(i["category_confidence"], i["urgency_confidence"])))
    if name == "at-risk":
        items.sort(key=lambda i: i["seconds_left"])
    return items


def task_view(task: WorkTask, complaint: Complaint | None = None) -> dict:
    return {"id": task.id, "kind": task.kind, "role": task.role, "department": task.department_code,
            "number": complaint.number if complaint else None, "reason": task.reason,
            "due_at": task.due_at.isoformat(), "status": task.status, "created_at": task.created_at.isoformat(),
            "done_at": task.done_at.isoformat() if task.done_at else None, "done_by": task.done_by}


async def tasks(app: web.Application, agent: Agent, status: str = "open") -> list[dict]:
    stmt = (select(WorkTask, Complaint).join(Complaint, Complaint.id == WorkTask.complaint_id)
            .where(WorkTask.status == status).order_by(WorkTask.due_at).limit(LIMIT))
    if agent.role == "agent":
        stmt = stmt.where(WorkTask.role == "agent")
    stmt = _scoped(stmt, agent)
    async with app[SESSIONMAKER]() as session:
        rows = (await session.execute(stmt)).all()
        await session.commit()
    return [task_view(t, c) for t, c in rows]


async def dead_letters(app: web.Application, agent: Agent) -> dict:
    if agent.role not in ("supervisor", "manager", "admin"):
        raise ApiError(403, "this needs the supervisor role or higher")
    async with app[SESSIONMAKER]() as session:
        ostmt = (select(OutboxItem, Complaint.number).outerjoin(Complaint, Complaint.id == OutboxItem.complaint_id)
                 .where(OutboxItem.status.in_(("dead", "undeliverable"))).order_by(OutboxItem.id.desc()).limit(LIMIT))
        scope = scope_of(agent)
        if scope is not None:
            ostmt = ostmt.where(Complaint.department_code == scope)
        outbox = (await session.execute(ostmt)).all()
        inbox = (await session.scalars(select(InboxItem).where(InboxItem.status.in_(("quarantined", "dead")))
                                       .order_by(InboxItem.id.desc()).limit(LIMIT))).all()
        await session.commit()
    return {
        "outbox": [{"id": o.id, "channel": o.channel, "kind": o.kind, "number": number, "status": o.status,
                    "attempts": o.attempts, "error": o.last_error, "created_at": o.created_at.isoformat(),
                    "subject": (o.payload or {}).get("subject")} for o, number in outbox],
        "inbox": [{"id": i.id, "channel": i.channel, "status": i.status, "attempts": i.attempts,
                   "reason": i.last_error, "received_at": i.received_at.isoformat(),
                   "preview": mask(((i.message or {}).get("text") or "")[:200])} for i in inbox],
    }


async def complaint_page(app: web.Application, agent: Agent, number: str) -> dict:
    """Everything the complaint page shows: the detail with its thread across channels, the suggestion
    and its reasons, customer history and repeats, plans, tasks, escalations, audit and next actions."""
    contacts = shows_contacts(agent)
    async with app[SESSIONMAKER]() as session:
        c = await _visible(session, agent, number)
        customer = await session.get(Customer, c.customer_id) if c.customer_id else None
        messages = (await session.scalars(select(ComplaintMessage).where(ComplaintMessage.complaint_id == c.id)
                                          .order_by(ComplaintMessage.created_at, ComplaintMessage.id))).all()
        wf = await session.get(ComplaintWorkflow, c.id)
        history = (await session.scalars(select(Complaint).where(
            Complaint.customer_id == c.customer_id, Complaint.id != c.id).order_by(Complaint.received_at.desc())
            .limit(50))).all() if c.customer_id else []
        repeat_of = await session.get(Complaint, c.repeat_of_id) if c.repeat_of_id else None
        repeats = (await session.scalars(select(Complaint.number).where(Complaint.repeat_of_id == c.id))).all()
        merged_into = await session.get(Complaint, wf.merged_into_id) if wf and wf.merged_into_id else None
        plan_rows = await plans.plans_of(session, c.id)
        task_rows = (await session.scalars(select(WorkTask).where(WorkTask.complaint_id == c.id)
                                           .order_by(WorkTask.id))).all()
        escalations = (await session.scalars(select(Escalation).where(Escalation.complaint_id == c.id)
                                             .order_by(Escalation.id))).all()
        events = (await session.scalars(select(AuditEvent).where(AuditEvent.complaint_id == c.id)
                                        .order_by(AuditEvent.at, AuditEvent.id))).all()
        colleagues = (await session.execute(select(Agent.id, Agent.name).where(
            Agent.active.is_(True), Agent.department_code == c.department_code).order_by(Agent.name))).all()
        await session.commit()
    out = complaint_detail(c, customer, list(messages), contacts)
    out.update({
        "status_label": LABELS.get(c.status, c.status), "assignee_id": c.assignee_id,
        "first_response_at": c.first_response_at.isoformat() if c.first_response_at else None,
        "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None,
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "sla": None if wf is None else {
            "response_minutes": wf.response_minutes, "response_target_minutes": wf.response_target_minutes,
            "resolve_minutes": wf.resolve_minutes, "resolve_target_minutes": wf.resolve_target_minutes,
            "escalation": wf.escalation, "disputes": wf.disputes},
        "repeat_of": repeat_of.number if repeat_of else None, "repeats": list(repeats),
        "merged_into": merged_into.number if merged_into else None,
        "history": [{"number": h.number, "status": h.status, "category": h.category, "channel": h.channel,
                     "received_at": h.received_at.isoformat()} for h in history],
        "plans": [plans.plan_view(p) for p in plan_rows],
        "tasks": [task_view(t, c) for t in task_rows],
        "escalations": [{"kind": e.kind, "level": e.level, "detail": e.detail, "at": e.created_at.isoformat()}
                        for e in escalations],
        "audit": [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "before": e.before,
                   "after": e.after, "detail": e.detail if contacts else mask(e.detail)} for e in events],
        "actions": available(c, actor_of(agent)),
        "colleagues": [{"id": i, "name": n} for i, n in colleagues],
    })
    return out
