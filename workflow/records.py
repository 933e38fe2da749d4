"""Loading complaints for an operation, and their workflow row."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, ComplaintWorkflow


async def workflow_row(session: AsyncSession, complaint: Complaint) -> ComplaintWorkflow:
    """The complaint's workflow row, made on first use (callers hold the complaint's row lock).

    A batch that prefetched the rows of its complaints puts them in session.info["wf_rows"]
    ({complaint id: row or None}), which saves a query per complaint."""
    cache = session.info.get("wf_rows")
    if cache is not None and complaint.id in cache:
        row = cache[complaint.id]
    else:
        row = await session.get(ComplaintWorkflow, complaint.id)
    if row is None:
        row = ComplaintWorkflow(complaint_id=complaint.id, disputes=0, resolutions=0, progress_sent=0,
                                sla_revision=0)
        session.add(row)
        if cache is not None:
            cache[complaint.id] = row
        else:
            await session.flush()
    return row


async def lock_complaint(session: AsyncSession, *, number: str | None = None,
                         complaint_id: int | None = None) -> Complaint | None:
    """Load a complaint to change it. PostgreSQL: FOR UPDATE, so concurrent operations on one
    complaint (an agent and the scheduler) run one after the other; SQLite has one writer anyway."""
    stmt = select(Complaint)
    stmt = stmt.where(Complaint.number == number) if number is not None else stmt.where(Complaint.id == complaint_id)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)
