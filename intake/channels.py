"""Which channel modules exist; each offers from_settings(settings, intake, sessionmaker) -> Channel | None."""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

CHANNEL_MODULES = ("connectors.email", "connectors.wechat", "connectors.webhook", "connectors.webchat")


def build_channels(settings, intake, sessionmaker) -> dict:
    channels = {}
    for name in CHANNEL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        factory = getattr(module, "from_settings", None)
        if factory is None:   # a package without a channel factory is not a channel (yet)
            continue
        channel = factory(settings, intake, sessionmaker)
        if channel is not None:
            channels[channel.name] = channel
    return channels
