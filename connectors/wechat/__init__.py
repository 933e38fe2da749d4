"""WeChat Official Account channel (inbound pushes, passive replies, customer-service messages)."""
from __future__ import annotations

from connectors.base import IntakePort

from .channel import WELCOME_TEXT, WechatChannel, ack_text
from .crypto import SignatureError, WechatCrypto, msg_signature, plain_signature

__all__ = ["from_settings", "WechatChannel", "WechatCrypto", "SignatureError", "plain_signature", "msg_signature",
           "ack_text", "WELCOME_TEXT"]


def from_settings(settings, intake: IntakePort, sessionmaker) -> WechatChannel | None:
    """The WeChat channel, or None when `[wechat]` is not configured; bad secrets stop the start."""
    w = settings.wechat
    if w is None:
        return None
    return WechatChannel(appid=w.appid, secret=w.secret, token=w.token, aes_key=w.aes_key, mode=w.mode,
                         api_base=w.api_base, intake=intake, sessionmaker=sessionmaker,
                         attachment_limit=settings.attachment_limit)
