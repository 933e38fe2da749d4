"""The closed loop's own tables: solution plans, remedies, escalations, tasks, SLA figures, console sessions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .crypto import EncryptedText

PLAN_STATES = ("draft", "awaiting_manager", "approved", "rejected", "superseded")
TASK_STATES = ("open", "done")


class ComplaintWorkflow(Base):
    """One row per complaint once the workflow touches it: SLA figures and links the lifecycle keeps.

    Response and resolution times are stored as minutes next to their target minutes when they
    happen, so on-time rates are a plain `minutes <= target_minutes` over the table.
    """
    __tablename__ = "complaint_workflow"
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    response_minutes: Mapped[int | None] = mapped_column(Integer)
    response_target_minutes: Mapped[int | None] = mapped_column(Integer)
    resolve_minutes: Mapped[int | None] = mapped_column(Integer)
    resolve_target_minutes: Mapped[int | None] = mapped_column(Integer)
    escalation: Mapped[str | None] = mapped_column(String(16))           # None | supervisor | manager
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    surveyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disputes: Mapped[int] = mapped_column(Integer, default=0)
    resolutions: Mapped[int] = mapped_column(Integer, default=0)
    progress_sent: Mapped[int] = mapped_column(Integer, default=0)
    sla_revision: Mapped[int] = mapped_column(Integer, default=0)        # bumped when deadlines are recomputed


class SolutionPlan(Base):
    """处理方案: measures, deadline, resources and cost; approved by a supervisor (and a manager above a limit)."""
    __tablename__ = "solution_plans"
    __table_args__ = (Index("ix_solution_plans_complaint", "complaint_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    measures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{kind, detail, amount_cents}]
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    resources: Mapped[str | None] = mapped_column(Text)
    estimated_cost_cents: Mapped[int] = mapped_column(Integer, default=0)
    needs_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    supervisor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    manager_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Remedy(Base):
    """A refund, return, replacement or compensation actually granted: amounts for the monthly report."""
    __tablename__ = "remedies"
    __table_args__ = (Index("ix_remedies_recorded", "recorded_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("solution_plans.id"))
    kind: Mapped[str] = mapped_column(String(16))          # refund | return | replacement | compensation
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    department_code: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    """A warning or an escalation raised by the SLA clock or a dispute, for a role of a department."""
    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_open", "acknowledged_at", "department_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))   # response_warning, response_breach, resolution_breach, dispute...
    level: Mapped[str] = mapped_column(String(16))  # agent | supervisor | manager
    department_code: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class WorkTask(Base):
    """Work for a person that the system cannot do: a supervisor's call-back after a poor survey
    score, or a phone call to a customer we cannot write to."""
    __tablename__ = "work_tasks"
    __table_args__ = (Index("ix_work_tasks_open", "status", "department_code", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))          # callback | call_customer
    role: Mapped[str] = mapped_column(String(16))          # who should do it: agent | supervisor
    department_code: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    survey_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    note: Mapped[str | None] = mapped_column(EncryptedText)


class ConsoleSession(Base):
    """A logged-in browser: only the SHA-256 of the cookie value is stored; CSRF token per session."""
    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
