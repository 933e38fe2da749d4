from __future__ import annotations

import re
import unicodedata

from connectors.base import MessageKind
from intake.pipeline import Context, Quarantine
from intake.reading import UNREAD

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """NFC, no control or zero-width characters, unified line ends, no runs of blank lines."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


class Normalize:
    name = "normalize"

    async def run(self, ctx: Context) -> None:
        msg = ctx.msg
        if msg.meta.get(UNREAD):
            raise Quarantine(f"no reader for messages stored unread as {msg.meta[UNREAD]!r}")
        if msg.meta.get("ours"):     # one of our own mails came back (seen only once read in full)
            ctx.note(self.name, "our own message came back: ignored")
            ctx.stop = True
            return
        if msg.meta.get("parse_error"):
            raise Quarantine(f"the message could not be read: {msg.meta['parse_error']}")
        ctx.text = clean_text(msg.text or "")
        if msg.kind is MessageKind.MESSAGE and not ctx.text and not msg.attachments:
            raise Quarantine("the message has no text and no attachment")
        ctx.note(self.name, "cleaned", chars=len(ctx.text), attachments=len(msg.attachments))
