"""The channel modules; each offers from_settings(settings, intake, sessionmaker) -> Channel | None."""
from __future__ import annotations

from connectors import email, webchat, webhook, wechat

CHANNEL_MODULES = (email, wechat, webhook, webchat)


def build_channels(settings, intake, sessionmaker) -> dict:
    """The configured channels by name (a module returns None when its channel is not configured)."""
    channels = {}
    for module in CHANNEL_MODULES:
        channel = module.from_settings(settings, intake, sessionmaker)
        if channel is not None:
            channels[channel.name] = channel
    return channels
