"""The audit trail: who did what, when, written in the caller's transaction.

Audit events are append-only: no API edits them, and the ORM refuses to update or delete one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, utcnow


class AuditImmutable(RuntimeError):
    pass


def record(session: AsyncSession, actor: str, action: str, *, complaint_id: int | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           detail: str | None = None, at: datetime | None = None) -> AuditEvent:
    event_ = AuditEvent(at=at or utcnow(), actor=actor, action=action, complaint_id=complaint_id,
                        before=before, after=after, detail=detail)
    session.add(event_)
    return event_


def _refuse(mapper, connection, target) -> None:
    raise AuditImmutable(f"audit event {target.id} cannot be changed or deleted")


event.listen(AuditEvent, "before_update", _refuse)
event.listen(AuditEvent, "before_delete", _refuse)
