from __future__ import annotations

from connectors.base import MessageKind
from intake.batch import DUPLICATE_WINDOW
from intake.numbering import NUMBER_RE
from intake.pipeline import Context
from models import AuditEvent, Complaint, ComplaintMessage, StoredAttachment, utcnow


class Thread:
    """Append a message about an existing complaint to it instead of registering it again."""
    name = "thread"

    async def run(self, ctx: Context) -> None:
        msg = ctx.msg
        for ref in msg.thread_refs:
            if not NUMBER_RE.fullmatch(ref):
                continue
            complaint = ctx.batch.complaints_by_number.get(ref)
            if complaint is None:
                ctx.note(self.name, "unknown reference", ref=ref)
                continue
            # A bounce comes from a mail server, not the customer: its reference was verified
            # by the connector (our signed Message-ID), so it is trusted without the sender check.
            if msg.kind is MessageKind.BOUNCE or (ctx.customer is not None and complaint.customer_id is not None
                                                  and complaint.customer_id == ctx.customer.id):
                append(ctx, complaint, via=f"reference {ref}")
                return
            ctx.note(self.name, "reference not trusted", ref=ref, reason="sender is not this complaint's customer")
        if msg.kind is not MessageKind.MESSAGE:
            ctx.note(self.name, f"{msg.kind.value} recorded", reason="no complaint to attach it to")
            ctx.stop = True
            return
        if ctx.customer is not None:
            same = next((c for c in ctx.batch.recent_by_customer.get(ctx.customer, ())
                         if ctx.text and c.text == ctx.text and c.received_at >= msg.received_at - DUPLICATE_WINDOW), None)
            if same is not None:
                append(ctx, same, via="same text from the same customer within 24 h")
                return
        ctx.note(self.name, "new complaint")


def append(ctx: Context, complaint: Complaint, via: str) -> None:
    """Add the message to the complaint's thread (now, or once a complaint of this batch is numbered)."""
    msg = ctx.msg
    kind = {MessageKind.BOUNCE: "bounce", MessageKind.AUTO_REPLY: "auto_reply"}.get(msg.kind, "message")
    ctx.complaint, ctx.threaded, ctx.stop = complaint, True, True
    ctx.note("thread", "appended", number=complaint.number, via=via, kind=kind)

    def finish() -> None:
        add_message(ctx, complaint, kind=kind, author="system" if msg.kind is MessageKind.BOUNCE else "customer")
        action = "delivery_failure" if msg.kind is MessageKind.BOUNCE else "customer_message"
        ctx.batch.insert(AuditEvent, at=utcnow(), actor="system" if kind == "bounce" else "customer",
                         action=action, complaint_id=complaint.id, detail=f"{msg.channel} {kind} appended ({via})")

    if complaint.id is None:      # registered earlier in this same batch
        ctx.batch.after_numbering(complaint, finish)
    else:
        finish()


def add_message(ctx: Context, complaint: Complaint, *, kind: str, author: str) -> None:
    """The inbound message on the complaint's thread, with its attachments."""
    msg = ctx.msg
    values = dict(complaint_id=complaint.id, direction="in", kind=kind, channel=msg.channel, author=author,
                  subject=msg.subject, text=ctx.text, message_id=msg.external_id[:255], inbox_item_id=ctx.item.id,
                  created_at=utcnow())
    if not msg.attachments:
        ctx.batch.insert(ComplaintMessage, **values)
        return
    message = ctx.add(ComplaintMessage(**values))   # its id is needed by the attachments
    for a in msg.attachments:
        ctx.add(StoredAttachment(message=message, name=a.name[:255], content_type=a.content_type[:128],
                                 size=a.size, sha256=a.sha256, data=a.data, note=a.note))
