"""The contract every channel connector follows.

Inbound: a connector turns the outside world into `InboundMessage`s and hands each
one to the `Sink` it was given (``intake.inbox.accept``); it acknowledges its source
only after the sink returned, because the sink returns only after the commit.

Outbound: the outbox dispatcher calls ``await connector.send(item)``. A connector
raises `TransientSendError` (retry later) or `PermanentSendError` (dead, shown to
agents); anything else is treated as transient.
"""
from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Protocol

from workflow.loop import backoff_delay

log = logging.getLogger(__name__)


class MessageKind(str, enum.Enum):
    MESSAGE = "message"        # a customer wrote something: register or thread it
    AUTO_REPLY = "auto_reply"  # out-of-office and the like: record, never acknowledge
    BOUNCE = "bounce"          # delivery failure of one of our messages
    EVENT = "event"            # platform event (e.g. WeChat subscribe): no complaint


@dataclass(frozen=True)
class Sender:
    handle: str                  # the channel's own id: address, openid, session id...
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int
    sha256: str
    data: bytes | None = None    # None when over the size limit: metadata is still kept
    note: str | None = None      # e.g. "over the 10 MiB limit, not stored"

    @classmethod
    def from_bytes(cls, name: str, content_type: str, data: bytes, *, limit: int | None = None) -> "Attachment":
        digest = hashlib.sha256(data).hexdigest()
        if limit is not None and len(data) > limit:
            return cls(name, content_type, len(data), digest, None, f"over the {limit} byte limit, not stored")
        return cls(name, content_type, len(data), digest, data)


@dataclass(frozen=True)
class InboundMessage:
    channel: str                 # "email", "webchat", "wechat", "webhook:<source>", "phone", "walk_in"
    external_id: str             # unique per channel: Message-ID, event id, session:seq ...
    sender: Sender
    text: str
    received_at: datetime        # timezone-aware
    subject: str | None = None
    attachments: tuple[Attachment, ...] = ()
    thread_refs: tuple[str, ...] = ()   # complaint numbers or message ids this refers to
    raw: bytes = b""             # the original bytes, kept so the message can be processed again
    reply_to: dict[str, Any] = field(default_factory=dict)  # how to answer on the same channel
    kind: MessageKind = MessageKind.MESSAGE
    meta: dict[str, Any] = field(default_factory=dict)      # product, order_no, region, parse notes...


class AcceptResult(str, enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"


Sink = Callable[[InboundMessage], Awaitable[AcceptResult]]


@dataclass(frozen=True)
class OutboundMessage:
    """One outbox row as a connector sees it."""
    id: int
    channel: str
    kind: str                    # ack, progress, survey, reply, welcome...
    reply_to: dict[str, Any]
    payload: dict[str, Any]      # subject, text, complaint number, template data...
    dedupe_key: str
    attempts: int = 0


@dataclass(frozen=True)
class SendResult:
    """What a successful send reports back; stored on the outbox row and the thread."""
    external_id: str | None = None   # e.g. the Message-ID we used
    detail: str | None = None


class TransientSendError(Exception):
    """Try again later (connection refused, 4xx SMTP, token expired...)."""


class PermanentSendError(Exception):
    """Will never succeed as is (5xx SMTP, unknown recipient...)."""


class WindowClosedError(PermanentSendError):
    """This channel cannot reach the customer now (e.g. WeChat's 48-hour window):
    the dispatcher tries another contact of the customer, else marks the item undeliverable."""


class IntakePort(Protocol):
    """What the daemon gives a connector: the inbox, and a way to learn a message's outcome."""

    async def accept(self, msg: InboundMessage) -> AcceptResult: ...

    async def outcome(self, channel: str, external_id: str) -> tuple[str, str | None] | None:
        """(inbox status, complaint number or None) of an accepted message; None if never seen."""

    async def process_now(self, channel: str, external_id: str, timeout: float = 3.0) -> str | None:
        """Run the pipeline for that accepted message now (or wait for the worker that has it);
        return its complaint number, or None if it was not registered in time."""


class Connector(Protocol):
    name: str

    async def send(self, item: OutboundMessage) -> SendResult: ...


class PullConnector:
    """Base for connectors that poll: run `serve_once` forever with jittered backoff."""

    name = "pull"
    min_backoff = 1.0
    max_backoff = 300.0

    async def serve_once(self) -> None:
        raise NotImplementedError

    async def serve_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self.serve_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect later, never die
                failures += 1
                delay = backoff_delay(failures, self.min_backoff, self.max_backoff)
                log.warning("%s: %s; retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)


class Channel(Protocol):
    """What a channel module's `from_settings(settings, intake, sessionmaker)` returns (or None when
    the channel is not configured). The daemon sends outbox items of `name` (and `name:*`) to `send`,
    mounts `setup_routes` on its aiohttp app if present, and runs `background()` coroutines."""

    name: str

    async def send(self, item: OutboundMessage) -> SendResult: ...

    # optional:
    # def setup_routes(self, app: aiohttp.web.Application) -> None
    # def background(self) -> list[Coroutine]
