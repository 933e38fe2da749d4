"""Messages to the customer: outbox rows on the channel the complaint came from, written in the
caller's transaction. A complaint taken by phone or at the counter has no channel to write to:
then an agent is asked to call instead (a work task), and that is recorded."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, ComplaintMessage, OutboxItem, WorkTask

from . import audit

SUBJECTS = {"progress": "处理进展", "survey": "满意度回访", "reply": "客服回复", "result": "处理结果"}
CALL_WITHIN = timedelta(hours=4)


def can_write(complaint: Complaint) -> bool:
    return bool(complaint.reply_to)


def queue(session: AsyncSession, complaint: Complaint, template: str, text: str, *, author: str, automatic: bool,
          key: str, now: datetime, extra: dict | None = None) -> OutboxItem | WorkTask:
    """An outbox row for the customer, or (no way to write) a task for an agent to call them."""
    if not can_write(complaint):
        task = WorkTask(complaint_id=complaint.id, kind="call_customer", role="agent",
                        department_code=complaint.department_code, due_at=now + CALL_WITHIN, status="open",
                        reason=f"请致电客户（{SUBJECTS[template]}）：{text}", created_at=now)
        session.add(task)
        audit.record(session, author, "call_needed", complaint_id=complaint.id, at=now,
                     detail=f"{complaint.channel}: no channel to write to; an agent must call ({template})")
        return task
    payload = {"subject": f"[{complaint.number}] {SUBJECTS[template]}", "text": text, "number": complaint.number,
               "template": template, "automatic": automatic, "author": author, **(extra or {})}
    row = OutboxItem(channel=complaint.channel, kind=template, complaint_id=complaint.id,
                     reply_to=complaint.reply_to, payload=payload, dedupe_key=key, recipient_hash=None,
                     status="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(row)
    return row


def call_note(session: AsyncSession, complaint: Complaint, text: str, *, author: str, now: datetime) -> ComplaintMessage:
    """What an agent told a phone or walk-in customer, kept in the thread."""
    message = ComplaintMessage(complaint_id=complaint.id, direction="out", kind="call_note",
                               channel=complaint.channel, author=author, subject=None, text=text, created_at=now)
    session.add(message)
    return message
