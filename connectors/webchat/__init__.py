"""Web chat channel: an embeddable widget, its websocket and the intake chatbot.

Embed with one tag: <script src="https://HOST/widget.js" defer></script>
"""
from __future__ import annotations

from connectors.base import IntakePort

from .channel import CHANNEL, MAX_TEXT, Limits, WebchatChannel
from .dialogue import Dialogue, Photo, Registered, Say

__all__ = ["from_settings", "WebchatChannel", "Limits", "Dialogue", "Photo", "Registered", "Say", "CHANNEL",
           "MAX_TEXT"]


def from_settings(settings, intake: IntakePort, sessionmaker) -> WebchatChannel:
    """Always enabled: the widget needs no secret (abuse is held off by rate limits)."""
    return WebchatChannel(intake, sessionmaker, photo_limit=min(settings.attachment_limit, 2 * 1024 * 1024))
