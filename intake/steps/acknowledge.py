from __future__ import annotations

from intake.pipeline import Context
from models import OutboxItem, utcnow
from workflow.messages import acknowledgement


class Acknowledge:
    """Queue the acknowledgement on the channel the complaint came from: an outbox row
    committed with the registration, so it is sent once however often we crash."""
    name = "acknowledge"

    async def run(self, ctx: Context) -> None:
        msg, complaint = ctx.msg, ctx.complaint
        if not msg.reply_to or msg.channel.split(":", 1)[0] not in ctx.services.outbound_channels:
            ctx.note(self.name, "none", reason=f"no way to answer on channel {msg.channel}")
            return
        recipient = ctx.services.keyring.blind_index(msg.channel, msg.sender.handle)
        sent = ctx.batch.acks_last_hour[recipient]
        if sent >= ctx.services.settings.ack_limit_per_hour:
            ctx.note(self.name, "suppressed", reason=f"{sent} acknowledgements to this sender in the last hour")
            return
        ctx.batch.acks_last_hour[recipient] += 1
        notes = [f"附件“{a.name}”超过大小限制，未能保存，请通过其他方式发送。" for a in msg.attachments if a.data is None]
        ctx.note(self.name, "queued", channel=msg.channel)

        def finish() -> None:
            ctx.batch.insert(
                OutboxItem, channel=msg.channel, kind="ack", complaint_id=complaint.id, reply_to=msg.reply_to,
                payload=acknowledgement(complaint.number, complaint.urgency, complaint.response_due, notes),
                dedupe_key=f"ack:{complaint.id}", recipient_hash=recipient, status="pending", attempts=0,
                next_attempt_at=utcnow(), created_at=utcnow())

        ctx.batch.after_numbering(complaint, finish)
