"""What agents (and customers, through their replies) do to a complaint.

Each operation checks the state table, changes the complaint, writes the audit event and any
outbox and timer rows in the caller's transaction; the caller commits. `perform()` maps an
action name and its parameters (from the API or a console form) to the operation.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, Complaint, LabelledExample, utcnow

from . import audit, outbound, plans, sla
from .config import WorkflowEnv
from .escalations import raise_
from .lifecycle import TERMINAL, Actor, Forbidden, Invalid, TransitionRefused, check, transition
from .records import workflow_row
from .timers import ensure_timer

CATEGORIES = ("product_quality", "logistics", "service", "price_refund", "system_fault", "other", "non_complaint")
MAX_TEXT = 5000


def _text(params: dict[str, Any], key: str, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{key} is required", field=key)
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} must be text", field=key)
    if len(value) > limit:
        raise Invalid(f"{key} is longer than {limit} characters", field=key)
    return value.strip()


async def assign(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                 now: datetime) -> None:
    assignee_id = params.get("assignee_id", actor.agent_id)
    if not isinstance(assignee_id, int) or isinstance(assignee_id, bool):
        raise Invalid("assignee_id must be an agent id", field="assignee_id")
    check(complaint, "assign", actor)
    if actor.kind == "agent" and not actor.at_least("supervisor") and assignee_id != actor.agent_id:
        raise Forbidden("an agent can take a complaint for themselves; a supervisor assigns it to others")
    agent = await session.get(Agent, assignee_id)
    if agent is None or not agent.active:
        raise Invalid(f"no active agent {assignee_id}", field="assignee_id")
    if agent.role in ("agent", "supervisor") and agent.department_code != complaint.department_code:
        raise Invalid(f"{agent.name} works in another department", field="assignee_id")
    before = {"assignee_id": complaint.assignee_id}
    complaint.assignee_id = assignee_id
    transition(session, complaint, "assign", actor, now=now, before=before, after={"assignee_id": assignee_id})


async def start(session, complaint, actor, env, params, now) -> None:
    transition(session, complaint, "start", actor, now=now)


async def await_customer(session, complaint, actor, env, params, now) -> None:
    question = _text(params, "text", required=False)
    transition(session, complaint, "await_customer", actor, now=now)
    if question:
        await _reply(session, complaint, actor, question, now)


async def resume(session, complaint, actor, env, params, now) -> None:
    transition(session, complaint, "resume", actor, now=now)


async def resolve(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                  now: datetime) -> None:
    """Resolve on the approved plan and tell the customer the result on the origin channel."""
    result = _text(params, "result", required=True)
    check(complaint, "resolve", actor)
    plan = await plans.current_plan(session, complaint.id)
    if plan is None or plan.status != "approved":
        raise TransitionRefused("a solution plan must be approved before the complaint is resolved"
                                + ("" if plan is None else f" (plan {plan.id} is {plan.status})"))
    wf = await workflow_row(session, complaint)
    sla.record_resolution(complaint, wf, now)
    if sla.record_first_response(complaint, wf, now):
        audit.record(session, actor.label, "first_response", complaint_id=complaint.id, at=now,
                     after={"minutes": wf.response_minutes, "target_minutes": wf.response_target_minutes})
    wf.resolutions += 1
    remedies = plans.record_remedies(session, complaint, plan, now)
    transition(session, complaint, "resolve", actor, now=now,
               after={"plan": plan.id, "resolve_minutes": wf.resolve_minutes,
                      "resolve_target_minutes": wf.resolve_target_minutes,
                      "remedies": [{"kind": r.kind, "amount": plans.yuan(r.amount_cents)} for r in remedies]})
    measures = "、".join(plans.MEASURES.get(m["kind"], m["kind"]) for m in plan.measures)
    text = (f"您好，您的投诉（编号 {complaint.number}）已处理完毕。\n处理结果：{result}\n处理措施：{measures}\n"
            "如您认可处理结果，请回复“1”确认；如仍有问题，请回复“2”并说明原因，我们将重新处理。")
    outbound.queue(session, complaint, "result", text, author=actor.label, automatic=False,
                   key=f"result:{complaint.id}:{wf.resolutions}", now=now)


async def confirm(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                  now: datetime) -> None:
    """The customer accepts the result; the survey follows (a durable timer, within 3 working days)."""
    transition(session, complaint, "confirm", actor, now=now, detail=_text(params, "note", required=False))
    wf = await workflow_row(session, complaint)
    wf.confirmed_at = now
    due = now + timedelta(minutes=env.settings.survey_delay_minutes)
    await ensure_timer(session, complaint.id, "survey", due, f"survey:{complaint.id}:{wf.resolutions}")


async def dispute(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                  now: datetime) -> None:
    """The customer rejects the result: the complaint is disputed and escalated to a supervisor."""
    reason = _text(params, "reason", required=False) or "客户不认可处理结果"
    wf = await workflow_row(session, complaint)
    before = {"resolved_at": complaint.resolved_at.isoformat() if complaint.resolved_at else None}
    transition(session, complaint, "dispute", actor, now=now, before=before, after={"resolved_at": None},
               detail=reason[:500])
    complaint.resolved_at = None
    wf.resolve_minutes = wf.resolve_target_minutes = None
    wf.disputes += 1
    await raise_(session, complaint, "dispute", "supervisor", f"客户对处理结果有异议：{reason[:200]}", now=now)


async def reopen(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                 now: datetime) -> None:
    note = _text(params, "note", required=False)
    plan = await plans.current_plan(session, complaint.id)
    transition(session, complaint, "reopen", actor, now=now, detail=note,
               before={"plan": plan.id if plan else None}, after={"plan": None})
    if plan is not None:
        plan.status = "superseded"     # the customer rejected its result: a new plan is needed
    await start_progress_clock(session, complaint, env, now)


async def close(session, complaint, actor, env, params, now) -> None:
    transition(session, complaint, "close", actor, now=now, detail=_text(params, "note", required=False))


async def withdraw(session, complaint, actor, env, params, now) -> None:
    transition(session, complaint, "withdraw", actor, now=now, detail=_text(params, "reason", required=False))


async def merge(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, params: dict,
                now: datetime) -> None:
    """Merge a duplicate into the complaint that carries on (`into`: its number)."""
    into_number = _text(params, "into", required=True, limit=32)
    check(complaint, "merge", actor)
    target = await session.scalar(select(Complaint).where(Complaint.number == into_number))
    if target is None:
        raise Invalid(f"no complaint {into_number}", field="into")
    if target.id == complaint.id:
        raise Invalid("a complaint cannot be merged into itself", field="into")
    if not actor.sees(target):
        raise Forbidden(f"complaint {target.number} belongs to another department")
    if target.status in ("merged", "withdrawn"):
        raise TransitionRefused(f"complaint {target.number} is {target.status}; merge into the one that carries on")
    wf = await workflow_row(session, complaint)
    wf.merged_into_id = target.id
    transition(session, complaint, "merge", actor, now=now, after={"merged_into": target.number})
    audit.record(session, actor.label, "merged_in", complaint_id=target.id, at=now,
                 after={"duplicate": complaint.number})


async def _reply(session: AsyncSession, complaint: Complaint, actor: Actor, text: str, now: datetime) -> None:
    if complaint.status in TERMINAL:
        raise TransitionRefused(f"complaint {complaint.number} is {complaint.status}; it takes no more replies")
    if outbound.can_write(complaint):
        outbound.queue(session, complaint, "reply", text, author=actor.label, automatic=False,
                       key=f"reply:{complaint.id}:{uuid.uuid4().hex}", now=now)
    else:
        outbound.call_note(session, complaint, text, author=actor.label, now=now)
    wf = await workflow_row(session, complaint)
    first = sla.record_first_response(complaint, wf, now)
    audit.record(session, actor.label, "replied", complaint_id=complaint.id, at=now,
                 after={"channel": complaint.channel, "first_response": first,
                        **({"minutes": wf.response_minutes, "target_minutes": wf.response_target_minutes}
                           if first else {})})


async def reply(session: AsyncSession, complaint: Complaint, actor: Actor, text: str, now: datetime) -> None:
    """An agent's message to the customer on the origin channel (a phone complaint: a call note)."""
    if not actor.sees(complaint):
        raise Forbidden(f"complaint {complaint.number} belongs to another department")
    text = _text({"text": text}, "text", required=True)
    await _reply(session, complaint, actor, text, now)


async def review(session: AsyncSession, complaint: Complaint, agent: Agent, env: WorkflowEnv, category: str,
                 urgency: str, now: datetime | None = None) -> str:
    """Accept or correct the classifier's suggestion: a labelled example for its learning, and the
    deadlines follow a changed urgency. Returns the audit action (reviewed | corrected)."""
    if category not in CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(CATEGORIES)}", field="category")
    if urgency not in sla.URGENCIES:
        raise Invalid("urgency must be P0, P1 or P2", field="urgency")
    actor = Actor.of(agent)
    if not actor.sees(complaint):
        raise Forbidden(f"complaint {complaint.number} belongs to another department")
    now = now or utcnow()
    suggestion = complaint.suggestion or {}
    before = {"category": complaint.category, "urgency": complaint.urgency}
    session.add(LabelledExample(
        complaint_id=complaint.id, text=complaint.text, category=category, urgency=urgency,
        suggested_category=suggestion.get("category"), suggested_urgency=suggestion.get("urgency"),
        model_version=suggestion.get("model_version"), agent_id=agent.id, created_at=now))
    complaint.category, complaint.reviewed, complaint.needs_review = category, True, False
    complaint.p0_watch = False
    if urgency != complaint.urgency:
        await sla.change_urgency(session, complaint, urgency, env.calendar)
    after = {"category": category, "urgency": urgency}
    action = "reviewed" if before == after else "corrected"
    audit.record(session, actor.label, action, complaint_id=complaint.id, before=before, after=after, at=now)
    return action


async def start_progress_clock(session: AsyncSession, complaint: Complaint, env: WorkflowEnv, now: datetime) -> None:
    """Make sure a progress timer runs while the complaint is open (one per due time: idempotent)."""
    hours = env.settings.progress_hours.get(complaint.urgency, 24)
    due = now + timedelta(hours=hours)
    await ensure_timer(session, complaint.id, "progress", due, f"progress:{complaint.id}:{int(due.timestamp())}")


OPERATIONS = {
    "assign": assign, "start": start, "await_customer": await_customer, "resume": resume, "resolve": resolve,
    "confirm": confirm, "dispute": dispute, "reopen": reopen, "close": close, "withdraw": withdraw, "merge": merge,
}


async def perform(session: AsyncSession, complaint: Complaint, action: str, actor: Actor, env: WorkflowEnv,
                  params: dict[str, Any] | None = None, now: datetime | None = None) -> Any:
    """Run a lifecycle action by name (plan actions included)."""
    params, now = params or {}, now or utcnow()
    if action == "draft_plan":
        return await plans.draft(session, complaint, actor, env, params, now)
    if action in ("approve_plan", "reject_plan"):
        plan_id = params.get("plan_id")
        if plan_id is not None and (not isinstance(plan_id, int) or isinstance(plan_id, bool)):
            raise Invalid("plan_id must be a number", field="plan_id")
        note = _text(params, "note", required=False, limit=2000)
        fn = plans.approve if action == "approve_plan" else plans.reject
        return await fn(session, complaint, actor, plan_id, now, note)
    if action == "record_survey":
        from .surveys import DIMENSIONS, SurveyError, answer
        scores = {d: params.get(d) for d in DIMENSIONS}
        try:
            return await answer(session, complaint, env, channel=str(params.get("channel") or "agent")[:40],
                                scores=scores, comment=_text(params, "comment", required=False, limit=2000),
                                now=now, actor=actor)
        except SurveyError as exc:
            raise Invalid(str(exc)) from None
    fn = OPERATIONS.get(action)
    if fn is None:
        check(complaint, action, actor)   # raises the right error for unknown actions
        raise Invalid(f"unknown action {action!r}", field="action")
    return await fn(session, complaint, actor, env, params, now)

