from __future__ import annotations

from intake.pipeline import Context
from models import AuditEvent, Complaint, Timer, utcnow
from workflow.sla import deadlines
from workflow.timers import warning_time

from .thread import add_message


class Register:
    """Create the complaint with its SLA deadlines; its number, first message and timers follow
    once the worker has numbered the whole batch."""
    name = "register"

    async def run(self, ctx: Context) -> None:
        msg, s = ctx.msg, ctx.suggestion
        response_due, resolve_due = deadlines(s.urgency, msg.received_at, ctx.services.calendar)
        complaint = ctx.add(Complaint(
            customer=ctx.customer, channel=msg.channel, status="registered", category=s.category,
            urgency=s.urgency, category_confidence=s.category_confidence, urgency_confidence=s.urgency_confidence,
            needs_review=s.needs_review, p0_watch=s.p0_watch, suggestion=s.to_dict(), department_code=ctx.department,
            subject=msg.subject, text=ctx.text, product=_meta(msg, "product", 128), order_no=_meta(msg, "order_no", 64),
            region=_meta(msg, "region", 64) or (ctx.customer.region if ctx.customer else None),
            reply_to=msg.reply_to or None, trace=ctx.trace, received_at=msg.received_at, registered_at=utcnow(),
            response_due=response_due, resolve_due=resolve_due))
        ctx.complaint = complaint
        entry = ctx.note(self.name, "numbered with the batch", response_due=response_due.isoformat(),
                         resolve_due=resolve_due.isoformat())
        reg = ctx.batch.register(ctx, complaint, ctx.department, entry)

        def finish() -> None:
            add_message(ctx, complaint, kind="message", author="customer")
            for kind, due in (("response_warning", response_due), ("resolution_warning", resolve_due)):
                ctx.batch.insert(Timer, complaint_id=complaint.id, kind=kind, due_at=warning_time(msg.received_at, due),
                                 payload={"deadline": due.isoformat()}, dedupe_key=f"{kind}:{complaint.id}",
                                 cancelled=False)
            if s.p0_watch:
                # A possible P0 left unreviewed for P0's response time goes to the supervisor.
                ctx.batch.insert(Timer, complaint_id=complaint.id, kind="p0_watch",
                                 due_at=deadlines("P0", msg.received_at, ctx.services.calendar)[0], payload={},
                                 dedupe_key=f"p0_watch:{complaint.id}", cancelled=False)
            ctx.batch.insert(AuditEvent, at=utcnow(), actor=msg.meta.get("actor", "system"), action="registered",
                             complaint_id=complaint.id,
                             after={"number": complaint.number, "category": s.category, "urgency": s.urgency,
                                    "department": ctx.department, "channel": msg.channel})

        reg.finish.append(finish)


def _meta(msg, key: str, limit: int) -> str | None:
    value = msg.meta.get(key)
    return str(value)[:limit] if value else None
