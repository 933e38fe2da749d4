"""Weibo fan service (粉丝服务平台) pushes.

Verification: ``signature = sha1(''.join(sorted([app_secret, timestamp, nonce])))`` in the query of
the GET handshake (answer ``echostr``) and of every POST. The signature does not cover the body,
so the timestamp window and the nonce cache (same nonce, other body → refused) apply.
Messages carry no id: the dedupe key is sender, time and a hash of the content.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from connectors.base import MessageKind

from .payload import PayloadError
from .signing import SignatureError, equal_hex

REPLY_API = "https://m.api.weibo.com/2/messages/reply.json"


def signature(app_secret: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([app_secret, timestamp, nonce])).encode()).hexdigest()


def check(app_secret: str, timestamp: str | None, nonce: str | None, sig: str | None) -> None:
    if not timestamp or not nonce or not equal_hex(sig, signature(app_secret, timestamp, nonce)):
        raise SignatureError("bad Weibo signature")


def seconds(timestamp: str) -> float:
    """Weibo's timestamp, in seconds whether sent as seconds or milliseconds."""
    try:
        ts = float(timestamp)
    except ValueError:
        raise SignatureError("bad timestamp") from None
    return ts / 1000 if ts > 1e11 else ts


def parse(data: dict[str, Any]) -> dict[str, Any]:
    mtype = data.get("type")
    if not isinstance(mtype, str) or not mtype:
        raise PayloadError("type", "required, a string")
    sender = data.get("sender_id")
    if isinstance(sender, bool) or not isinstance(sender, (str, int)) or not str(sender).strip():
        raise PayloadError("sender_id", "required")
    sender = str(sender).strip()[:64]
    created_raw = data.get("created_at")
    if not isinstance(created_raw, str):
        raise PayloadError("created_at", "required, e.g. 'Mon Jul 16 18:09:20 +0800 2012'")
    try:
        created = datetime.strptime(created_raw, "%a %b %d %H:%M:%S %z %Y").astimezone(timezone.utc)
    except ValueError:
        raise PayloadError("created_at", "required, e.g. 'Mon Jul 16 18:09:20 +0800 2012'") from None
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise PayloadError("text", "must be a string")
    extra = data.get("data")
    if extra is not None and not isinstance(extra, dict):
        raise PayloadError("data", "must be an object")
    extra = extra or {}
    kind = MessageKind.MESSAGE
    meta: dict[str, Any] = {"weibo_type": mtype}
    if mtype == "event":
        kind = MessageKind.EVENT
        meta["event"] = str(extra.get("subtype") or "")
        text = f"[事件] {meta['event']}"
    elif mtype == "position":
        meta["location"] = {"lat": extra.get("latitude"), "lon": extra.get("longitude")}
        text = text or f"[位置] ({extra.get('latitude')}, {extra.get('longitude')})"
    elif mtype in ("image", "voice"):
        meta["media"] = {k: extra.get(k) for k in ("vfid", "tovfid") if extra.get(k) is not None}
        text = text or ("[图片]" if mtype == "image" else "[语音]")
    if not text:
        raise PayloadError("text", "required for a text message")
    digest = hashlib.sha1(json.dumps([mtype, text, extra], sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()[:16]
    return {"external_id": f"{sender}:{int(created.timestamp())}:{digest}", "sender_id": sender, "text": text,
            "created_at": created, "kind": kind, "meta": meta, "receiver_id": str(data.get("receiver_id") or "")}
