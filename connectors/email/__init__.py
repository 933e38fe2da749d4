"""The e-mail channel: IMAP pollers in, SMTP out.

`from_settings(settings, intake, sessionmaker)` builds it (None when neither mailboxes nor
SMTP are configured). The daemon runs `background()` (one poller per mailbox) and sends
outbox items of channel "email" through `send()`. The pollers commit mail unread; the intake
worker reads it in full with `read_stored()` (see `deferred.py`).
"""
from __future__ import annotations

from typing import Any, Coroutine

from connectors.base import IntakePort, OutboundMessage, PermanentSendError, SendResult

from .deferred import own_addresses, read_stored
from .imap import ImapPoller
from .mime import ParsedMail, parse
from .smtp import SmtpSender, Templates

__all__ = ["EmailChannel", "from_settings", "ImapPoller", "SmtpSender", "Templates", "parse", "ParsedMail",
           "own_addresses", "read_stored"]


class EmailChannel:
    name = "email"

    def __init__(self, settings: Any, intake: IntakePort, sessionmaker: Any):
        self.sender = SmtpSender(settings.smtp) if settings.smtp else None
        own = own_addresses(settings.smtp.sender) if settings.smtp else frozenset()
        self.pollers = [ImapPoller(mb, intake, sessionmaker, own_addresses=own) for mb in settings.mailboxes]

    async def send(self, item: OutboundMessage) -> SendResult:
        if self.sender is None:
            raise PermanentSendError("no SMTP server is configured (smtp.host / KESU_SMTP_HOST)")
        return await self.sender.send(item)

    def background(self) -> list[Coroutine]:
        return [poller.serve_forever() for poller in self.pollers]


def from_settings(settings: Any, intake: IntakePort, sessionmaker: Any) -> EmailChannel | None:
    if not settings.mailboxes and not settings.smtp:
        return None
    return EmailChannel(settings, intake, sessionmaker)
