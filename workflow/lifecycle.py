"""The complaint lifecycle: a declared state table, who may do what, and `transition()`.

    registered → assigned → in_progress (plan drafted → plan approved) ⇄ awaiting_customer
      → resolved (result told to the customer) → confirmed → surveyed → closed
    resolved → disputed (the customer rejects the result; escalated) → reopened → assigned | in_progress
    any open state → merged (a duplicate) | withdrawn

`transition()` refuses anything the table does not allow, with a reason, and writes an audit
event (who, what, before/after, when) in the caller's transaction. It does no network I/O:
messages to the customer are outbox rows written by the operations in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, Complaint, utcnow

from . import audit

OPEN = ("registered", "assigned", "in_progress", "awaiting_customer", "reopened", "disputed")
DONE = ("resolved", "confirmed", "surveyed")
TERMINAL = ("closed", "merged", "withdrawn")
STATES = OPEN + DONE + TERMINAL

# (state, action) -> new state. Anything not listed is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("registered", "assign"): "assigned",
    ("assigned", "assign"): "assigned",
    ("reopened", "assign"): "assigned",
    ("in_progress", "assign"): "in_progress",
    ("awaiting_customer", "assign"): "awaiting_customer",
    ("assigned", "start"): "in_progress",
    ("reopened", "start"): "in_progress",
    ("assigned", "draft_plan"): "in_progress",
    ("reopened", "draft_plan"): "in_progress",
    ("in_progress", "draft_plan"): "in_progress",
    ("in_progress", "approve_plan"): "in_progress",
    ("in_progress", "reject_plan"): "in_progress",
    ("in_progress", "await_customer"): "awaiting_customer",
    ("awaiting_customer", "resume"): "in_progress",
    ("in_progress", "resolve"): "resolved",
    ("resolved", "confirm"): "confirmed",
    ("resolved", "dispute"): "disputed",
    ("disputed", "reopen"): "reopened",
    ("confirmed", "record_survey"): "surveyed",
    ("confirmed", "close"): "closed",
    ("surveyed", "close"): "closed",
    **{(s, "merge"): "merged" for s in ("registered", "assigned", "in_progress", "awaiting_customer", "reopened")},
    **{(s, "withdraw"): "withdrawn" for s in OPEN},
}
ACTIONS = tuple(dict.fromkeys(a for _, a in TRANSITIONS))

# Who may take each action (besides the system, which may take any):
#   agent      any agent, supervisor, manager or admin who can see the complaint
#   handler    the assignee, or a supervisor or above who can see the complaint
#   supervisor a supervisor or above who can see the complaint
#   customer   the customer (an agent who is the handler may act on their behalf, e.g. by phone)
WHO: dict[str, str] = {
    "assign": "agent", "start": "handler", "draft_plan": "handler", "approve_plan": "supervisor",
    "reject_plan": "supervisor", "await_customer": "handler", "resume": "customer", "resolve": "handler",
    "confirm": "customer", "dispute": "customer", "reopen": "supervisor", "record_survey": "customer",
    "close": "supervisor", "merge": "agent", "withdraw": "customer",
}
RANK = {"agent": 0, "supervisor": 1, "manager": 2, "admin": 3}
LABELS = {"registered": "已登记", "assigned": "已分派", "in_progress": "处理中", "awaiting_customer": "等待客户",
          "resolved": "已解决", "confirmed": "客户已确认", "surveyed": "已回访", "closed": "已关闭",
          "disputed": "客户有异议", "reopened": "已重开", "merged": "已合并", "withdrawn": "已撤诉"}


class WorkflowError(Exception):
    """An operation was refused; `status` is the HTTP status an API should answer with."""
    status = 409

    def __init__(self, reason: str, *, field: str | None = None):
        super().__init__(reason)
        self.reason, self.field = reason, field


class TransitionRefused(WorkflowError):
    status = 409


class Forbidden(WorkflowError):
    status = 403


class Invalid(WorkflowError):
    status = 400


@dataclass(frozen=True)
class Actor:
    kind: str                         # agent | customer | system
    agent_id: int | None = None
    role: str | None = None
    department: str | None = None

    @classmethod
    def of(cls, agent: Agent) -> "Actor":
        return cls("agent", agent.id, agent.role, agent.department_code)

    @property
    def label(self) -> str:
        return f"agent:{self.agent_id}" if self.kind == "agent" else self.kind

    def at_least(self, role: str) -> bool:
        return self.kind == "agent" and RANK.get(self.role or "", -1) >= RANK[role]

    def sees(self, complaint: Complaint) -> bool:
        """Agents and supervisors work within their department; managers and admins everywhere."""
        if self.kind != "agent":
            return True
        return self.at_least("manager") or (self.department is not None and
                                             complaint.department_code == self.department)


SYSTEM = Actor("system")
CUSTOMER = Actor("customer")


def target_of(status: str, action: str) -> str:
    if action not in WHO:
        raise Invalid(f"unknown action {action!r}; known: {', '.join(ACTIONS)}", field="action")
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise TransitionRefused(f"cannot {action} a complaint that is {status} ({LABELS.get(status, status)}); "
                                f"{action} is allowed from: {', '.join(s for s, a in TRANSITIONS if a == action)}")
    return target


def check_permission(complaint: Complaint, action: str, actor: Actor) -> None:
    if actor.kind == "system":
        return
    who = WHO[action]
    if actor.kind == "customer":
        if who != "customer":
            raise Forbidden(f"a customer cannot {action}")
        return
    if not actor.sees(complaint):
        raise Forbidden(f"complaint {complaint.number} belongs to another department")
    is_handler = actor.at_least("supervisor") or complaint.assignee_id == actor.agent_id
    if who == "supervisor" and not actor.at_least("supervisor"):
        raise Forbidden(f"{action} needs a supervisor or above")
    if who in ("handler", "customer") and not is_handler:
        raise Forbidden(f"{action} is for the assignee of {complaint.number} or a supervisor")


def check(complaint: Complaint, action: str, actor: Actor) -> str:
    """The state `action` leads to, or WorkflowError saying why not."""
    target = target_of(complaint.status, action)
    check_permission(complaint, action, actor)
    return target


def available(complaint: Complaint, actor: Actor, actions: Iterable[str] = ACTIONS) -> list[str]:
    out = []
    for action in actions:
        try:
            check(complaint, action, actor)
        except WorkflowError:
            continue
        out.append(action)
    return out


def transition(session: AsyncSession, complaint: Complaint, action: str, actor: Actor, *,
               now: datetime | None = None, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None, detail: str | None = None) -> str:
    """Move `complaint` by `action` and audit it (the caller has made the action's own changes and
    passes what they changed as before/after). Returns the new state."""
    target = check(complaint, action, actor)
    old = complaint.status
    complaint.status = target
    now = now or utcnow()
    if target in TERMINAL and complaint.closed_at is None:
        complaint.closed_at = now
    audit.record(session, actor.label, action, complaint_id=complaint.id,
                 before={"status": old, **(before or {})}, after={"status": target, **(after or {})},
                 detail=detail, at=now)
    return target
