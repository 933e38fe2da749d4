from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectors.base import MessageKind
from intake.numbering import NUMBER_RE
from intake.pipeline import Context
from models import Complaint, ComplaintMessage, StoredAttachment
from workflow import audit

CLOSED = ("closed", "merged", "withdrawn")
DUPLICATE_WINDOW = timedelta(hours=24)


class Thread:
    """Append a message about an existing complaint to it instead of registering it again."""
    name = "thread"

    async def run(self, ctx: Context) -> None:
        msg = ctx.msg
        for ref in msg.thread_refs:
            if not NUMBER_RE.fullmatch(ref):
                continue
            complaint = await ctx.session.scalar(select(Complaint).where(Complaint.number == ref))
            if complaint is None:
                ctx.note(self.name, "unknown reference", ref=ref)
                continue
            # A bounce comes from a mail server, not the customer: its reference was verified
            # by the connector (our signed Message-ID), so it is trusted without the sender check.
            if msg.kind is MessageKind.BOUNCE or (ctx.customer and complaint.customer_id == ctx.customer.id):
                await append(ctx, complaint, via=f"reference {ref}")
                return
            ctx.note(self.name, "reference not trusted", ref=ref, reason="sender is not this complaint's customer")
        if msg.kind is not MessageKind.MESSAGE:
            ctx.note(self.name, f"{msg.kind.value} recorded", reason="no complaint to attach it to")
            ctx.stop = True
            return
        if ctx.customer is not None and ctx.customer.id is not None:
            same = await self._same_text_recently(ctx)
            if same is not None:
                await append(ctx, same, via="same text from the same customer within 24 h")
                return
        ctx.note(self.name, "new complaint")

    async def _same_text_recently(self, ctx: Context) -> Complaint | None:
        since = ctx.msg.received_at - DUPLICATE_WINDOW
        rows = await ctx.session.scalars(
            select(Complaint).where(Complaint.customer_id == ctx.customer.id, Complaint.received_at >= since,
                                    Complaint.status.not_in(CLOSED)).order_by(Complaint.id))
        return next((c for c in rows if c.text == ctx.text and ctx.text), None)


async def append(ctx: Context, complaint: Complaint, via: str) -> ComplaintMessage:
    msg = ctx.msg
    kind = {MessageKind.BOUNCE: "bounce", MessageKind.AUTO_REPLY: "auto_reply"}.get(msg.kind, "message")
    message = ComplaintMessage(complaint_id=complaint.id, direction="in", kind=kind, channel=msg.channel,
                               author="system" if msg.kind is MessageKind.BOUNCE else "customer",
                               subject=msg.subject, text=ctx.text, message_id=msg.external_id[:255],
                               inbox_item_id=ctx.item.id)
    ctx.session.add(message)
    await ctx.session.flush()
    add_attachments(ctx, message)
    action = "delivery_failure" if msg.kind is MessageKind.BOUNCE else "customer_message"
    audit.record(ctx.session, "system" if kind == "bounce" else "customer", action, complaint_id=complaint.id,
                 detail=f"{msg.channel} {kind} appended ({via})")
    ctx.complaint, ctx.threaded, ctx.stop = complaint, True, True
    ctx.note("thread", "appended", number=complaint.number, via=via, kind=kind)
    return message


def add_attachments(ctx: Context, message: ComplaintMessage) -> None:
    for a in ctx.msg.attachments:
        ctx.session.add(StoredAttachment(message_id=message.id, name=a.name[:255], content_type=a.content_type[:128],
                                         size=a.size, sha256=a.sha256, data=a.data, note=a.note))
