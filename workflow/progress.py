"""Progress messages: while a complaint is open, the customer hears from us at least every 24 h
(P0: every 8 h). A progress timer that finds a recent message to the customer just moves on."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, ComplaintMessage, OutboxItem, Timer

from . import outbound
from .config import WorkflowEnv
from .lifecycle import LABELS, OPEN
from .messages import local_time
from .records import workflow_row
from .timers import ensure_timer

TO_CUSTOMER = ("ack", "progress", "reply", "result")
SLACK = timedelta(minutes=1)


async def last_contact(session: AsyncSession, complaint: Complaint) -> datetime:
    """When we last wrote to the customer (queued counts: it is on its way), else the receipt time.
    A batch may have looked these up for all its complaints at once (session.info["last_contact"])."""
    cache = session.info.get("last_contact")
    if cache is not None and complaint.id in cache:
        known = cache[complaint.id]
        return max(_aware(known), complaint.received_at) if known is not None else complaint.received_at
    queued = await session.scalar(select(func.max(OutboxItem.created_at)).where(
        OutboxItem.complaint_id == complaint.id, OutboxItem.kind.in_(TO_CUSTOMER)))
    noted = await session.scalar(select(func.max(ComplaintMessage.created_at)).where(
        ComplaintMessage.complaint_id == complaint.id, ComplaintMessage.direction == "out"))
    times = [t for t in (queued, noted, complaint.received_at) if t is not None]
    return max(_aware(t) for t in times)


def _aware(t: datetime) -> datetime:
    # func.max() comes back without the column type's conversion on SQLite
    from datetime import timezone
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


async def prefetch_last_contacts(session: AsyncSession, complaint_ids: list[int]) -> dict[int, datetime | None]:
    """last_contact() for many complaints in two grouped queries."""
    out: dict[int, datetime | None] = {i: None for i in complaint_ids}
    if not complaint_ids:
        return out
    for stmt in (select(OutboxItem.complaint_id, func.max(OutboxItem.created_at)).where(
                     OutboxItem.complaint_id.in_(complaint_ids), OutboxItem.kind.in_(TO_CUSTOMER))
                 .group_by(OutboxItem.complaint_id),
                 select(ComplaintMessage.complaint_id, func.max(ComplaintMessage.created_at)).where(
                     ComplaintMessage.complaint_id.in_(complaint_ids), ComplaintMessage.direction == "out")
                 .group_by(ComplaintMessage.complaint_id)):
        for cid, at in (await session.execute(stmt)).all():
            if at is not None:
                at = _aware(at)
                out[cid] = at if out[cid] is None else max(out[cid], at)
    return out


def progress_text(complaint: Complaint) -> str:
    return (f"您好，您的投诉（编号 {complaint.number}）正在处理中，当前状态：{LABELS.get(complaint.status, complaint.status)}。"
            f"我们将在 {local_time(complaint.resolve_due)} 前给您处理结果，如有新的进展会及时告知。"
            "如需补充信息，直接回复本消息即可。")


async def fire_progress(session: AsyncSession, timer: Timer, complaint: Complaint, env: WorkflowEnv,
                        now: datetime) -> str:
    if complaint.status not in OPEN:
        return "not open"
    interval = timedelta(hours=env.settings.progress_hours.get(complaint.urgency, 24))
    last = await last_contact(session, complaint)
    if now - last + SLACK >= interval:
        wf = await workflow_row(session, complaint)
        wf.progress_sent += 1
        outbound.queue(session, complaint, "progress", progress_text(complaint), author="system", automatic=True,
                       key=f"progress:{complaint.id}:{wf.progress_sent}", now=now)
        if "last_contact" in session.info:
            session.info["last_contact"][complaint.id] = now
        next_due, outcome = now + interval, "sent"
    else:
        next_due, outcome = last + interval, "recent contact"
    await ensure_timer(session, complaint.id, "progress", next_due,
                       f"progress:{complaint.id}:{int(next_due.timestamp())}")
    return outcome
