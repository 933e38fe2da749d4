"""Call-back tasks: a supervisor calls a customer who rated any survey dimension 3 or lower.

The task has its own due date (working days after the answer); a durable timer escalates it to
a manager if it is still open then. Completing it closes the complaint.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import Complaint, SurveyResponse, WorkTask

from . import audit
from .config import WorkflowEnv
from .lifecycle import Actor, Forbidden, SYSTEM, TransitionRefused, transition
from .timers import ensure_timer


async def open_callback(session: AsyncSession, complaint: Complaint, response: SurveyResponse, env: WorkflowEnv,
                        now: datetime) -> WorkTask:
    scores = {d: getattr(response, d) for d in ("efficiency", "attitude", "solution")}
    low = ", ".join(f"{d} {v}" for d, v in scores.items() if v is not None and v <= env.settings.callback_score)
    due = env.calendar.add_working_days(now, env.settings.callback_working_days)
    task = WorkTask(complaint_id=complaint.id, kind="callback", role="supervisor",
                    department_code=complaint.department_code, survey_response_id=response.id, due_at=due,
                    status="open", created_at=now,
                    reason=f"满意度回访评分偏低（{low}），请主管回电了解情况")
    session.add(task)
    await session.flush()
    await ensure_timer(session, complaint.id, "callback_due", due, f"callback_due:{task.id}", {"task_id": task.id})
    audit.record(session, "system", "callback_opened", complaint_id=complaint.id, at=now,
                 after={"task_id": task.id, "due_at": due.isoformat(), "scores": scores})
    return task


async def complete(session: AsyncSession, task: WorkTask, complaint: Complaint, actor: Actor, note: str | None,
                   now: datetime) -> WorkTask:
    """Mark a task done (callbacks need a supervisor); a finished call-back closes the complaint."""
    if task.status != "open":
        raise TransitionRefused(f"task {task.id} is already {task.status}")
    if not actor.sees(complaint):
        raise Forbidden(f"complaint {complaint.number} belongs to another department")
    if task.role == "supervisor" and not actor.at_least("supervisor"):
        raise Forbidden("a call-back is done by a supervisor")
    task.status, task.done_at, task.done_by, task.note = "done", now, actor.agent_id, note
    audit.record(session, actor.label, "task_done", complaint_id=complaint.id, at=now,
                 before={"task_id": task.id, "status": "open"}, after={"task_id": task.id, "status": "done"},
                 detail=f"{task.kind} done")
    if task.kind == "callback" and complaint.status == "surveyed":
        transition(session, complaint, "close", SYSTEM, now=now, detail="call-back done")
    return task
