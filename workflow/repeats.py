"""Repeat complaints: the same customer (whatever identity or channel they used, since intake links
identities to one customer) with the same category within 30 days, or a text similar to one of
the customer's open complaints (TF-IDF cosine over character bigrams >= a threshold). A repeat
is linked to the earlier complaint and raised to at least P1.

`RepeatStep` runs this inside the intake pipeline right after registration (before the
acknowledgement, so the customer is told the P1 promise).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, Complaint, ComplaintWorkflow, Timer, utcnow

from . import sla
from .config import WorkflowSettings
from .lifecycle import OPEN
from .timers import warning_time

_NOISE = re.compile(r"[\s\W_]+", re.U)


def _grams(text: str) -> Counter:
    text = _NOISE.sub("", unicodedata.normalize("NFKC", text or "").lower())
    if len(text) < 2:
        return Counter(text)
    return Counter(text[i:i + 2] for i in range(len(text) - 1))


def similarities(text: str, others: list[str]) -> list[float]:
    """Cosine similarity of `text` to each of `others` in TF-IDF space (smoothed IDF over them all)."""
    docs = [_grams(text)] + [_grams(o) for o in others]
    n = len(docs)
    df = Counter(g for d in docs for g in d)
    idf = {g: math.log((1 + n) / (1 + c)) + 1 for g, c in df.items()}

    def vec(d: Counter) -> dict[str, float]:
        v = {g: (1 + math.log(c)) * idf[g] for g, c in d.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {g: x / norm for g, x in v.items()}

    first = vec(docs[0])
    return [sum(first.get(g, 0.0) * x for g, x in vec(d).items()) for d in docs[1:]]


@dataclass(frozen=True)
class Repeat:
    earlier: Complaint
    reason: str          # same_category | similar_text
    score: float = 1.0


async def find_repeat(session: AsyncSession, *, customer_id: int | None, category: str, text: str,
                      received_at, settings: WorkflowSettings, exclude_id: int | None = None) -> Repeat | None:
    """The customer's earlier complaint this one repeats, if any (read-only: no flush)."""
    if customer_id is None:
        return None
    others = [Complaint.customer_id == customer_id]
    if exclude_id is not None:
        others.append(Complaint.id != exclude_id)
    since = received_at - timedelta(days=settings.repeat_window_days)
    same = await session.scalar(
        select(Complaint).where(*others, Complaint.category == category, Complaint.received_at >= since,
                                Complaint.received_at <= received_at, Complaint.status.not_in(("merged", "withdrawn")))
        .order_by(Complaint.received_at.desc(), Complaint.id.desc()).limit(1))
    if same is not None:
        return Repeat(same, "same_category")
    open_ = list((await session.scalars(
        select(Complaint).where(*others, Complaint.status.in_(OPEN)).order_by(Complaint.id.desc()).limit(50))).all())
    if not open_:
        return None
    scores = similarities(text, [c.text for c in open_])
    best = max(range(len(open_)), key=scores.__getitem__)
    if scores[best] >= settings.repeat_similarity:
        return Repeat(open_[best], "similar_text", round(scores[best], 3))
    return None


class RepeatStep:
    """Intake pipeline step, right after Register (before Acknowledge, so the customer is told the
    P1 promise): link a repeat to the earlier complaint and raise it to at least P1.

    It follows the batched intake: it only reads, changes the new complaint in memory and queues
    rows for after numbering. Register's 80 % warnings were set for the old deadlines; their
    payload names that deadline, so the scheduler retires them as stale, and this step schedules
    the warnings of the new deadlines (SLA revision 1)."""
    name = "repeat"

    def __init__(self, settings: WorkflowSettings | None = None):
        self.settings = settings or WorkflowSettings()

    async def run(self, ctx) -> None:
        complaint = ctx.complaint
        if complaint is None or ctx.threaded:
            return
        found = await find_repeat(ctx.session, customer_id=ctx.customer.id if ctx.customer else None,
                                  category=complaint.category, text=complaint.text,
                                  received_at=complaint.received_at, settings=self.settings)
        if found is None:
            ctx.note(self.name, "not a repeat")
            return
        earlier, old = found.earlier, complaint.urgency
        complaint.repeat_of_id = earlier.id
        raised = sla.stricter(old, "P1") != old
        if raised:
            complaint.urgency = "P1"
            complaint.response_due, complaint.resolve_due = sla.deadlines("P1", complaint.received_at,
                                                                          ctx.services.calendar)
        ctx.note(self.name, "repeat", of=earlier.number, reason=found.reason, score=found.score,
                 urgency=complaint.urgency)

        def finish() -> None:
            batch = ctx.batch
            batch.insert(ComplaintWorkflow, complaint_id=complaint.id, sla_revision=1 if raised else 0, disputes=0,
                         resolutions=0, progress_sent=0)
            if raised:
                for kind, due in (("response_warning", complaint.response_due),
                                  ("resolution_warning", complaint.resolve_due)):
                    batch.insert(Timer, complaint_id=complaint.id, kind=kind, cancelled=False,
                                 due_at=warning_time(complaint.received_at, due),
                                 payload={"deadline": due.isoformat(), "revision": 1},
                                 dedupe_key=f"{kind}:{complaint.id}:r1")
            batch.insert(AuditEvent, at=utcnow(), actor="system", action="repeat_linked", complaint_id=complaint.id,
                         before={"repeat_of": None, "urgency": old},
                         after={"repeat_of": earlier.number, "urgency": complaint.urgency, "reason": found.reason,
                                "score": found.score})

        ctx.batch.after_numbering(complaint, finish)
