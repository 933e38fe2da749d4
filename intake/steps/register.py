from __future__ import annotations

from intake.numbering import next_number
from intake.pipeline import Context
from models import Complaint, ComplaintMessage, Timer, utcnow
from workflow import audit
from workflow.sla import deadlines
from workflow.timers import warning_time

from .thread import add_attachments


class Register:
    """Give the complaint its number, SLA deadlines and timers."""
    name = "register"

    async def run(self, ctx: Context) -> None:
        msg, s, session = ctx.msg, ctx.suggestion, ctx.session
        now = utcnow()
        number = await next_number(session, ctx.department, now)
        response_due, resolve_due = deadlines(s.urgency, msg.received_at, ctx.services.calendar)
        complaint = Complaint(
            number=number, customer_id=ctx.customer.id if ctx.customer else None, channel=msg.channel,
            status="registered", category=s.category, urgency=s.urgency,
            category_confidence=s.category_confidence, urgency_confidence=s.urgency_confidence,
            needs_review=s.needs_review, suggestion=s.to_dict(), department_code=ctx.department,
            subject=msg.subject, text=ctx.text, product=_meta(msg, "product", 128), order_no=_meta(msg, "order_no", 64),
            region=_meta(msg, "region", 64) or (ctx.customer.region if ctx.customer else None),
            reply_to=msg.reply_to or None, trace=[], received_at=msg.received_at, registered_at=now,
            response_due=response_due, resolve_due=resolve_due)
        session.add(complaint)
        await session.flush()
        message = ComplaintMessage(complaint_id=complaint.id, direction="in", kind="message", channel=msg.channel,
                                   author="customer", subject=msg.subject, text=ctx.text,
                                   message_id=msg.external_id[:255], inbox_item_id=ctx.item.id)
        session.add(message)
        await session.flush()
        add_attachments(ctx, message)
        for kind, start, due in (("response_warning", msg.received_at, response_due),
                                 ("resolution_warning", msg.received_at, resolve_due)):
            session.add(Timer(complaint_id=complaint.id, kind=kind, due_at=warning_time(start, due),
                              payload={"deadline": due.isoformat()}, dedupe_key=f"{kind}:{complaint.id}"))
        audit.record(session, msg.meta.get("actor", "system"), "registered", complaint_id=complaint.id,
                     after={"number": number, "category": s.category, "urgency": s.urgency,
                            "department": ctx.department, "channel": msg.channel})
        ctx.complaint = complaint
        ctx.note(self.name, number, response_due=response_due.isoformat(), resolve_due=resolve_due.isoformat())


def _meta(msg, key: str, limit: int) -> str | None:
    value = msg.meta.get(key)
    return str(value)[:limit] if value else None
