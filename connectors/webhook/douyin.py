"""Douyin open-platform webhooks.

``X-Douyin-Signature = sha1(client_secret + raw body)`` (hex) on every push, the verification
handshake included (event ``verify_webhook``: answer ``{"challenge": ...}``). Douyin retries three
times when it gets no answer in 5 s; the ``Msg-Id`` header identifies the delivery (dedupe key).
Private messages (``im_receive_msg``) become complaints; other events are recorded as events.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from connectors.base import MessageKind

from .payload import PayloadError
from .signing import SignatureError, equal_hex

SIGNATURE_HEADER = "X-Douyin-Signature"
MESSAGE_EVENTS = {"im_receive_msg", "im_receive_message", "receive_msg"}


def signature(client_secret: str, body: bytes) -> str:
    return hashlib.sha1(client_secret.encode() + body).hexdigest()


def check(client_secret: str, sig: str | None, body: bytes) -> None:
    if not sig:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not equal_hex(sig, signature(client_secret, body)):
        raise SignatureError("bad Douyin signature")


def content_of(data: dict[str, Any]) -> dict[str, Any]:
    """`content` arrives as an object or as JSON text inside the JSON."""
    content = data.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            return {"text": content}
    return content if isinstance(content, dict) else {}


def parse(data: dict[str, Any], msg_id: str | None, body: bytes) -> dict[str, Any]:
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadError("event", "required, a string")
    content = content_of(data)
    sender = data.get("from_user_id") or content.get("from_user_id") or data.get("user_openid") or ""
    if not isinstance(sender, (str, int)) or isinstance(sender, bool):
        raise PayloadError("from_user_id", "must be a string")
    sender = str(sender)[:64]
    external_id = (msg_id or "").strip()[:200] or "sha1:" + hashlib.sha1(body).hexdigest()
    created = datetime.now(timezone.utc)
    for key in ("create_time", "msg_time"):
        value = content.get(key, data.get(key))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 946684800 <= value <= 7258118400:
            created = datetime.fromtimestamp(value, timezone.utc)
            break
    meta: dict[str, Any] = {"douyin_event": event, "log_id": data.get("log_id")}
    if event in MESSAGE_EVENTS:
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            text = f"[{content.get('message_type') or '消息'}]"
        if not sender:
            raise PayloadError("from_user_id", "required for a message")
        meta.update(conversation_id=content.get("conversation_short_id"),
                    server_message_id=content.get("server_message_id"))
        kind = MessageKind.MESSAGE
    else:
        text, kind = f"[事件] {event}", MessageKind.EVENT
        meta["content"] = {k: v for k, v in content.items() if isinstance(v, (str, int, float, bool))}
    return {"external_id": external_id, "sender_id": sender or f"douyin:{data.get('client_key') or 'app'}",
            "text": text, "created_at": created, "kind": kind, "meta": meta, "to_user_id": data.get("to_user_id")}
