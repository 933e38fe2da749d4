"""Warnings and escalations: rows for the people who must act, shown in the console."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, Escalation

from . import audit
from .records import workflow_row

LEVELS = ("agent", "supervisor", "manager")


async def raise_(session: AsyncSession, complaint: Complaint, kind: str, level: str, detail: str, *,
                 now: datetime, actor: str = "system") -> Escalation:
    """Record a warning (level agent) or an escalation (supervisor, manager) and audit it."""
    row = Escalation(complaint_id=complaint.id, kind=kind, level=level, department_code=complaint.department_code,
                     detail=detail, created_at=now)
    session.add(row)
    if level != "agent":
        wf = await workflow_row(session, complaint)
        old = wf.escalation
        if old is None or LEVELS.index(level) > LEVELS.index(old):
            wf.escalation = level
        audit.record(session, actor, "escalated", complaint_id=complaint.id, at=now,
                     before={"escalation": old}, after={"escalation": wf.escalation, "kind": kind}, detail=detail)
    else:
        audit.record(session, actor, "warned", complaint_id=complaint.id, at=now, after={"kind": kind}, detail=detail)
    return row
