"""The generic webhook body: {"event_id", "sender": {"id", "name", "phone"?, "email"?}, "text",
"created_at", "attachments"?: [{"name", "content_type"?, "data" (base64) | "url"}], "meta"?: {...}}."""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone, tzinfo
from typing import Any

from connectors.base import Attachment

MAX_ID = 200
META_KEYS = ("product", "order_no", "region")


class PayloadError(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def load_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PayloadError("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadError("body", "must be a JSON object")
    return data


def ident(data: dict, field: str, name: str | None = None) -> str:
    """A non-empty id given as a string or an integer."""
    value = data.get(field)
    label = name or field
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PayloadError(label, "required, a string or an integer")
    value = str(value).strip()
    if not value or len(value) > MAX_ID:
        raise PayloadError(label, f"must be 1-{MAX_ID} characters")
    return value


def optional_str(data: dict, field: str, label: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(label, "must be a string")
    return value.strip() or None


def timestamp(value: Any, field: str, tz: tzinfo) -> datetime:
    """ISO 8601 (a time without zone is local time) or unix seconds."""
    try:
        if isinstance(value, str):
            dt = datetime.fromisoformat(value.strip())
            dt = dt if dt.tzinfo else dt.replace(tzinfo=tz)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            dt = datetime.fromtimestamp(value, timezone.utc)
        else:
            raise PayloadError(field, "required, ISO 8601 text or unix seconds")
        if not 2000 <= dt.astimezone(timezone.utc).year <= 2200:
            raise PayloadError(field, "is not a plausible time")
        return dt.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(field, "required, ISO 8601 text or unix seconds") from None


def attachments(value: Any, limit: int) -> tuple[tuple[Attachment, ...], list[str]]:
    """Attachments with inline data; links are kept as text, never fetched (no requests on a sender's behalf)."""
    if value is None:
        return (), []
    if not isinstance(value, list):
        raise PayloadError("attachments", "must be a list")
    found, links = [], []
    for i, a in enumerate(value):
        label = f"attachments[{i}]"
        if not isinstance(a, dict):
            raise PayloadError(label, "must be an object")
        name = optional_str(a, "name", f"{label}.name") or f"attachment-{i + 1}"
        ctype = optional_str(a, "content_type", f"{label}.content_type") or "application/octet-stream"
        if a.get("data") is not None:
            if not isinstance(a["data"], str):
                raise PayloadError(f"{label}.data", "must be base64 text")
            try:
                data = base64.b64decode(a["data"], validate=True)
            except (binascii.Error, ValueError):
                raise PayloadError(f"{label}.data", "is not valid base64") from None
            found.append(Attachment.from_bytes(name[:255], ctype[:128], data, limit=limit))
        elif a.get("url") is not None:
            url = optional_str(a, "url", f"{label}.url")
            if not url:
                raise PayloadError(f"{label}.url", "must not be empty")
            links.append(url)
        else:
            raise PayloadError(label, "needs data (base64) or url")
    return tuple(found), links


def parse(data: dict[str, Any], *, attachment_limit: int, tz: tzinfo) -> dict[str, Any]:
    """The validated fields; PayloadError names the first bad one."""
    event_id = ident(data, "event_id")
    sender = data.get("sender")
    if not isinstance(sender, dict):
        raise PayloadError("sender", "required, an object")
    sender_id = ident(sender, "id", "sender.id")
    name = sender.get("name")
    if not isinstance(name, str):
        raise PayloadError("sender.name", "required, a string")
    phone = optional_str(sender, "phone", "sender.phone")
    email = optional_str(sender, "email", "sender.email")
    text = data.get("text")
    if not isinstance(text, str):
        raise PayloadError("text", "required, a string")
    created = timestamp(data.get("created_at"), "created_at", tz)
    files, links = attachments(data.get("attachments"), attachment_limit)
    if not text.strip() and not files and not links:
        raise PayloadError("text", "must not be empty without attachments")
    meta_in = data.get("meta")
    if meta_in is not None and not isinstance(meta_in, dict):
        raise PayloadError("meta", "must be an object")
    meta = {k: str(meta_in[k])[:128] for k in META_KEYS if meta_in and isinstance(meta_in.get(k), (str, int))}
    if links:
        meta["links"] = links
        text = "\n".join([text, *links]) if text.strip() else "\n".join(links)
    return {"event_id": event_id, "sender_id": sender_id, "name": name.strip() or None, "phone": phone,
            "email": email, "text": text, "created_at": created, "attachments": files, "meta": meta}
