"""Commit first, read later: the poller stores each message *unread* and the worker reads it.

Reading a message in full (MIME walk, charset detection, HTML to text, auto-reply and bounce
verdicts) costs several times what fetching it does. The poller needs only two things before it may
commit and flag a message: its deduplication key (the Message-ID, else a digest of the
bytes) and whether it is one of our own messages coming back.
`peek()` reads those from the header block alone; `unread_message()` wraps the raw bytes
for the inbox; the worker calls `read_stored()` (off the event loop, with the classifier)
before the pipeline, so a parser that is slow or fails on hostile mail never holds up the
mailbox, and the raw message is safe in the inbox before any of that work starts.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parseaddr
from typing import Any

from connectors.base import InboundMessage, Sender

from . import msgid
from .headers import clean_address, parse_address, single_message_id
from .mime import parse, repair_header_block

UNREAD = "unread"                  # meta key: this message still has to be read by `read_stored`
MAX_HEADER_BLOCK = 256 * 1024      # as much as the full parser looks at for its repairs

# The header block as the stdlib parser sees it: lines (ended by CR, LF or CRLF) that look like a
# header field or continue one; the first line that does neither (blank, or garbage) ends it.
_HEADER_BLOCK = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
# A line starting "From " is an mbox envelope line to the stdlib parser, never a header.
_WANTED = re.compile(r"^(?!From )(message-id|from)[ \t]*:(.*(?:\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Peek:
    external_id: str
    message_id: str | None
    ours: bool


def peek(raw: bytes, *, own_addresses: frozenset[str] = frozenset(),
         verifier: msgid.Verifier | None = None) -> Peek:
    """The deduplication key of a raw message and whether it is ours, read from the Message-ID
    and From headers the way `mime.parse` reads them. Never raises."""
    body = repair_header_block(raw.lstrip(b" \t\r\n")[:MAX_HEADER_BLOCK])
    block = _HEADER_BLOCK.match(body).group().decode("ascii", "surrogateescape")
    block = block.replace("\r\n", "\n").replace("\r", "\n")
    found: dict[str, str] = {}
    for m in _WANTED.finditer(block):
        found.setdefault(m.group(1).lower(), m.group(2))
    mid = single_message_id(found.get("message-id"))
    if mid and len(mid) <= 200:
        external_id = mid
    elif mid:
        external_id = "sha256:" + hashlib.sha256(mid.encode()).hexdigest()
    else:
        external_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return Peek(external_id=external_id, message_id=mid,
                ours=bool(mid and msgid.verify(mid, verifier)[0]) or _from_us(found.get("from"), own_addresses))


def _from_us(value: str | None, own_addresses: frozenset[str]) -> bool:
    # Parsing an address is most of a peek's cost: only when one of ours is in the header at all.
    if not value or not own_addresses or not any(a in value.lower() for a in own_addresses):
        return False
    sender = parse_address(value)[1]
    return bool(sender and sender.lower() in own_addresses)


def unread_message(raw: bytes, p: Peek, *, received_at: datetime | None, meta: dict[str, Any]) -> InboundMessage:
    """What the poller commits: the raw bytes under their key, marked for reading. The sender is
    not known until then (the worker reads it, with everything else)."""
    return InboundMessage(
        channel="email", external_id=p.external_id, sender=Sender(handle="unknown"), text="",
        received_at=received_at or datetime.now(timezone.utc), raw=raw, meta={**meta, UNREAD: "email"})


def read_stored(msg: InboundMessage, *, attachment_limit: int | None = None,
                own_addresses: frozenset[str] = frozenset()) -> InboundMessage:
    """The full message for an unread one: everything `mime.parse` reads, under the key it was
    committed with. A message that cannot be read carries `parse_error` (normalize quarantines it)."""
    pm = parse(msg.raw, attachment_limit=attachment_limit, own_addresses=own_addresses)
    meta = {k: v for k, v in msg.meta.items() if k != UNREAD}
    if pm.ours:
        meta["ours"] = True
    return replace(pm.to_inbound(msg.raw, received_at=msg.received_at, extra_meta=meta), external_id=msg.external_id)


@functools.lru_cache(maxsize=16)    # the worker asks once per mail; the setting rarely changes
def own_addresses(sender: str | None) -> frozenset[str]:
    """Our From address (smtp.sender) as the set `peek` and `read_stored` compare senders with."""
    address = clean_address(parseaddr(sender or "")[1]) if sender else None
    return frozenset({address.lower()}) if address else frozenset()
