"""Solution plans (处理方案): measures, deadline, resources and estimated cost.

A supervisor approves a plan; a plan costing more than the configured amount needs a manager's
approval too (a manager's approval alone covers both). No one approves their own plan. When the
complaint is resolved, the plan's refunds, returns, replacements and compensations are recorded
with their amounts for the monthly report.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, Remedy, SolutionPlan

from .calendar import SHANGHAI
from .config import WorkflowEnv
from .lifecycle import Actor, Forbidden, Invalid, TransitionRefused, check, transition

MEASURES = {"refund": "退款", "return": "退货", "replacement": "换货", "repair": "维修",
            "compensation": "补偿", "apology": "道歉", "other": "其他"}
REMEDY_KINDS = ("refund", "return", "replacement", "compensation")
ACTIVE = ("draft", "awaiting_manager", "approved")


def to_cents(value: Any, field: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise Invalid(f"{field} must be an amount in yuan", field=field)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Invalid(f"{field} must be an amount in yuan, e.g. 199.50", field=field) from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("100000000"):
        raise Invalid(f"{field} must be between 0 and 100000000 yuan", field=field)
    return int((amount * 100).quantize(Decimal("1")))


def yuan(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def parse_plan(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Check a plan as the API or a form sends it; amounts in yuan, the deadline as ISO 8601."""
    raw = body.get("measures")
    if not isinstance(raw, list) or not raw or len(raw) > 20:
        raise Invalid("measures must be a list of 1-20 measures", field="measures")
    measures = []
    for i, m in enumerate(raw):
        if isinstance(m, str):
            m = {"kind": m}
        if not isinstance(m, dict) or m.get("kind") not in MEASURES:
            raise Invalid(f"measures[{i}].kind must be one of {', '.join(MEASURES)}", field="measures")
        detail = m.get("detail") or ""
        if not isinstance(detail, str) or len(detail) > 500:
            raise Invalid(f"measures[{i}].detail must be text of at most 500 characters", field="measures")
        measures.append({"kind": m["kind"], "detail": detail.strip(),
                         "amount_cents": to_cents(m.get("amount"), f"measures[{i}].amount")})
    deadline = body.get("deadline")
    try:
        deadline = datetime.fromisoformat(str(deadline))
    except ValueError:
        raise Invalid("deadline must be a date or time in ISO 8601, e.g. 2026-12-01T18:00", field="deadline") from None
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=SHANGHAI)
    deadline = deadline.astimezone(timezone.utc)
    if deadline < now - timedelta(minutes=1):
        raise Invalid("deadline is in the past", field="deadline")
    resources = body.get("resources") or None
    if resources is not None and (not isinstance(resources, str) or len(resources) > 2000):
        raise Invalid("resources must be text of at most 2000 characters", field="resources")
    cost = to_cents(body.get("estimated_cost"), "estimated_cost")
    if cost == 0:
        cost = sum(m["amount_cents"] for m in measures)
    return {"measures": measures, "deadline": deadline, "resources": resources, "estimated_cost_cents": cost}


async def current_plan(session: AsyncSession, complaint_id: int) -> SolutionPlan | None:
    return await session.scalar(select(SolutionPlan).where(
        SolutionPlan.complaint_id == complaint_id, SolutionPlan.status.in_(ACTIVE))
        .order_by(SolutionPlan.id.desc()).limit(1))


async def plans_of(session: AsyncSession, complaint_id: int) -> list[SolutionPlan]:
    return list((await session.scalars(select(SolutionPlan).where(SolutionPlan.complaint_id == complaint_id)
                                       .order_by(SolutionPlan.id))).all())


async def draft(session: AsyncSession, complaint: Complaint, actor: Actor, env: WorkflowEnv, body: dict[str, Any],
                now: datetime) -> SolutionPlan:
    if actor.agent_id is None:
        raise Forbidden("plans are drafted by agents")
    fields = parse_plan(body, now)
    previous = await current_plan(session, complaint.id)
    if previous is not None and previous.status == "approved":
        raise TransitionRefused("the approved plan stands; resolve the complaint, or dispute and reopen it")
    transition(session, complaint, "draft_plan", actor, now=now,
               after={"measures": [m["kind"] for m in fields["measures"]],
                      "estimated_cost": yuan(fields["estimated_cost_cents"])})
    if previous is not None:
        previous.status = "superseded"
    plan = SolutionPlan(complaint_id=complaint.id, status="draft", author_id=actor.agent_id,
                        needs_manager=fields["estimated_cost_cents"] > env.settings.manager_approval_cents,
                        created_at=now, **fields)
    session.add(plan)
    await session.flush()
    return plan


async def _pending_plan(session: AsyncSession, complaint: Complaint, plan_id: int | None, action: str,
                        actor: Actor) -> SolutionPlan:
    check(complaint, action, actor)
    plan = await current_plan(session, complaint.id)
    if plan is None or (plan_id is not None and plan.id != plan_id):
        raise TransitionRefused("there is no plan waiting for approval" if plan is None
                                else f"plan {plan_id} is not the current plan (that is {plan.id})")
    if plan.status == "approved":
        raise TransitionRefused(f"plan {plan.id} is already approved")
    return plan


async def approve(session: AsyncSession, complaint: Complaint, actor: Actor, plan_id: int | None, now: datetime,
                  note: str | None = None) -> SolutionPlan:
    plan = await _pending_plan(session, complaint, plan_id, "approve_plan", actor)
    if actor.agent_id is not None and actor.agent_id == plan.author_id:
        raise Forbidden("no one approves their own plan")
    before = {"plan": plan.id, "plan_status": plan.status}
    if plan.status == "draft":
        if not actor.at_least("supervisor"):
            raise Forbidden("a plan is approved by a supervisor")
        plan.supervisor_id, plan.supervisor_at = actor.agent_id, now
        if plan.needs_manager and actor.at_least("manager"):
            plan.manager_id, plan.manager_at = actor.agent_id, now
        plan.status = "awaiting_manager" if plan.needs_manager and plan.manager_id is None else "approved"
    else:  # awaiting_manager
        if not actor.at_least("manager"):
            raise Forbidden(f"plan {plan.id} costs {yuan(plan.estimated_cost_cents)} yuan: a manager must approve it too")
        plan.manager_id, plan.manager_at = actor.agent_id, now
        plan.status = "approved"
    plan.decision_note = note or plan.decision_note
    transition(session, complaint, "approve_plan", actor, now=now, before=before,
               after={"plan": plan.id, "plan_status": plan.status}, detail=note)
    return plan


async def reject(session: AsyncSession, complaint: Complaint, actor: Actor, plan_id: int | None, now: datetime,
                 note: str | None = None) -> SolutionPlan:
    plan = await _pending_plan(session, complaint, plan_id, "reject_plan", actor)
    if plan.status == "awaiting_manager" and not actor.at_least("manager"):
        raise Forbidden("this plan waits for a manager's decision")
    before = {"plan": plan.id, "plan_status": plan.status}
    plan.status, plan.decision_note = "rejected", note
    transition(session, complaint, "reject_plan", actor, now=now, before=before,
               after={"plan": plan.id, "plan_status": "rejected"}, detail=note)
    return plan


def record_remedies(session: AsyncSession, complaint: Complaint, plan: SolutionPlan, now: datetime) -> list[Remedy]:
    out = []
    for m in plan.measures:
        if m["kind"] in REMEDY_KINDS:
            out.append(Remedy(complaint_id=complaint.id, plan_id=plan.id, kind=m["kind"],
                              amount_cents=int(m.get("amount_cents") or 0), department_code=complaint.department_code,
                              category=complaint.category, recorded_at=now))
    session.add_all(out)
    return out


async def monthly_remedies(session: AsyncSession, year: int, month: int) -> dict[str, dict[str, int]]:
    """Refunds, returns, replacements and compensations recorded in a month (Beijing time):
    {kind: {"count": n, "amount_cents": sum}}."""
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    rows = (await session.execute(
        select(Remedy.kind, func.count(), func.coalesce(func.sum(Remedy.amount_cents), 0))
        .where(Remedy.recorded_at >= start, Remedy.recorded_at < end).group_by(Remedy.kind))).all()
    return {kind: {"count": int(n), "amount_cents": int(total)} for kind, n, total in rows}


def plan_view(plan: SolutionPlan) -> dict[str, Any]:
    return {"id": plan.id, "status": plan.status, "deadline": plan.deadline.isoformat(),
            "measures": [{**m, "label": MEASURES.get(m["kind"], m["kind"]), "amount": yuan(m.get("amount_cents", 0))}
                         for m in plan.measures],
            "resources": plan.resources, "estimated_cost": yuan(plan.estimated_cost_cents),
            "needs_manager": plan.needs_manager, "author_id": plan.author_id,
            "supervisor_id": plan.supervisor_id, "manager_id": plan.manager_id,
            "decision_note": plan.decision_note, "created_at": plan.created_at.isoformat()}
