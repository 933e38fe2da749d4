"""The audit trail: who did what, when, written in the caller's transaction."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, utcnow


def record(session: AsyncSession, actor: str, action: str, *, complaint_id: int | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           detail: str | None = None) -> AuditEvent:
    event = AuditEvent(at=utcnow(), actor=actor, action=action, complaint_id=complaint_id,
                       before=before, after=after, detail=detail)
    session.add(event)
    return event
