"""Signed webhooks from any platform (kesu's HMAC scheme), Weibo fan service and Douyin."""
from __future__ import annotations

from connectors.base import IntakePort

from .channel import WebhookChannel
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, signed_headers, verify

__all__ = ["from_settings", "WebhookChannel", "sign", "signed_headers", "verify", "SignatureError",
           "SIGNATURE_HEADER", "TIMESTAMP_HEADER"]


def from_settings(settings, intake: IntakePort, sessionmaker=None) -> WebhookChannel | None:
    """The channel for every source in `webhook.sources`, or None when none is configured."""
    if not settings.webhook_sources:
        return None
    return WebhookChannel({s.name: s for s in settings.webhook_sources}, intake=intake,
                          attachment_limit=settings.attachment_limit, timezone=settings.timezone)
