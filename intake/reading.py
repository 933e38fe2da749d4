"""Reading what a connector committed unread (so far only e-mail: see connectors/email/deferred.py).

The worker calls `read_in_full` before the pipeline, off the event loop when it can (together
with the classifier). Anything else passes through unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping

from connectors.base import InboundMessage
from connectors.email import own_addresses, read_stored
from connectors.email.deferred import UNREAD


def is_unread(meta: Mapping[str, Any] | None) -> bool:
    """Whether a message's meta (an InboundMessage's, or a stored row's) marks it unread."""
    return bool(meta and meta.get(UNREAD))


def read_in_full(msg: InboundMessage, settings: Any) -> InboundMessage:
    if msg.meta.get(UNREAD) != "email":
        return msg
    smtp = getattr(settings, "smtp", None)
    return read_stored(msg, attachment_limit=settings.attachment_limit,
                       own_addresses=own_addresses(smtp.sender if smtp else None))
