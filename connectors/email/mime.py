"""Raw mail bytes to what kesu reads: sender, subject, clean text, attachments, charset
decisions, the auto-reply/bounce verdict and the complaint numbers it refers to.

stdlib `email` with policy.default made lenient: header values are never run through the
header registry (which raises or crawls on hostile input) but decoded here, and enclosed
messages (message/rfc822) are kept as opaque attachments instead of being parsed again
and again (a 3 MB message nested 1 500 deep would otherwise take seconds). Never raises:
what cannot be read is reported in `parse_error`, and the message is quarantined with its raw bytes.
"""
from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy as email_policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from connectors.base import Attachment, InboundMessage, MessageKind, Sender

from . import msgid
from .charsets import Decision, decode
from .classify import Evidence, classify
from .headers import decode_header, message_ids, parse_address, single_message_id, unfold
from .text import html_to_text, trim_reply

MAX_PARTS = 300            # parts looked at per message
MAX_DEPTH = 12             # multipart nesting followed
MAX_TEXT_CHARS = 200_000   # body text kept per message (the raw keeps everything)
MAX_REFERENCES = 20        # References we carry into our replies


class _LenientPolicy(email_policy.EmailPolicy):
    """policy.default, but header values come back as the raw (unfolded) strings: the
    parser never fails on a header, and decoding is done (leniently) by `headers.py`."""

    def header_fetch_parse(self, name, value):  # noqa: D401 - email.policy API
        if hasattr(value, "name"):
            return value
        return "".join(email_policy.linesep_splitter.split(value))


LENIENT = _LenientPolicy(raise_on_defect=False)

# message/rfc822 and message/global parts are made opaque before parsing (see module doc).
_ENCLOSED = re.compile(rb"(?im)^(content-type:[ \t]*(?:\r?\n[ \t]+)?)message/(rfc822|global)\b")
_OPAQUE_PREFIX = b"application/x-kesu-enclosed-"
_OUR_ID_IN_TEXT = re.compile(rb"<\d{8}-[A-Z]{2,8}-\d{4,}\.[0-9a-z]{8,32}\.[0-9a-f]{16}@[^<>\s@]+>|"
                             rb"<kesu\.[0-9a-z]{8,32}\.[0-9a-f]{16}@[^<>\s@]+>")


@dataclass
class ParsedMail:
    external_id: str
    message_id: str | None = None
    sender_name: str | None = None
    sender_address: str | None = None
    reply_address: str | None = None
    subject: str = ""
    text: str = ""                    # clean: quoted history and signature trimmed
    full_text: str = ""               # untrimmed (HTML converted)
    trimmed: bool = False
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    charsets: list[Decision] = field(default_factory=list)
    kind: MessageKind = MessageKind.MESSAGE
    kind_reasons: list[str] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    thread_refs: list[str] = field(default_factory=list)     # trusted complaint numbers, best first
    thread_via: list[str] = field(default_factory=list)      # why each number is trusted
    ours: bool = False                # one of our own outgoing messages came back
    bounce: dict[str, Any] | None = None
    date: datetime | None = None
    defects: list[str] = field(default_factory=list)
    parse_error: str | None = None

    def to_inbound(self, raw: bytes, received_at: datetime | None = None,
                   extra_meta: dict[str, Any] | None = None) -> InboundMessage:
        when = received_at or _sane_date(self.date) or datetime.now(timezone.utc)
        handle = self.sender_address or "unknown"
        meta: dict[str, Any] = {
            "charsets": [d.as_dict() for d in self.charsets],
            "kind_reasons": self.kind_reasons,
            "trimmed": self.trimmed,
            "html_only": self.html_only,
            "thread_via": self.thread_via,
        }
        if self.defects:
            meta["defects"] = self.defects[:20]
        if self.bounce:
            meta["bounce"] = self.bounce
        over = [a.name for a in self.attachments if a.data is None]
        if over:
            meta["attachments_over_limit"] = over
        if self.trimmed:
            meta["full_text"] = self.full_text[:MAX_TEXT_CHARS]
        if self.parse_error:
            meta["parse_error"] = self.parse_error
        meta.update(extra_meta or {})
        reply_to = {
            "address": self.reply_address or self.sender_address,
            "name": self.sender_name,
            "message_id": self.message_id,
            "references": (self.references + ([self.message_id] if self.message_id else []))[-MAX_REFERENCES:],
            "subject": self.subject,
        } if (self.reply_address or self.sender_address) else {}
        return InboundMessage(
            channel="email", external_id=self.external_id,
            sender=Sender(handle=handle, name=self.sender_name, email=self.sender_address),
            text=self.text, received_at=when, subject=self.subject or None,
            attachments=tuple(self.attachments), thread_refs=tuple(self.thread_refs), raw=raw,
            reply_to=reply_to, kind=self.kind, meta=meta)

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "external_id": self.external_id,
            "sender": {"address": self.sender_address, "name": self.sender_name},
            "reply_address": self.reply_address,
            "subject": self.subject,
            "text": self.text,
            "trimmed": self.trimmed,
            "html_only": self.html_only,
            "charsets": [d.as_dict() for d in self.charsets],
            "attachments": [{"name": a.name, "type": a.content_type, "size": a.size, "sha256": a.sha256,
                             "stored": a.data is not None, "note": a.note} for a in self.attachments],
            "kind": self.kind.value,
            "kind_reasons": self.kind_reasons,
            "bounce": self.bounce,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "thread_refs": self.thread_refs,
            "thread_via": self.thread_via,
            "ours": self.ours,
            "date": self.date.isoformat() if self.date else None,
            "defects": self.defects[:20],
            "error": self.parse_error,
        }


def parse(raw: bytes, *, attachment_limit: int | None = None, verifier: msgid.Verifier | None = None,
          own_addresses: frozenset[str] = frozenset()) -> ParsedMail:
    """Read one raw message. Never raises; `parse_error` says why it cannot be registered."""
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    pm = ParsedMail(external_id=digest)
    try:
        _parse_into(pm, raw, attachment_limit, verifier, own_addresses)
    except RecursionError:
        pm.parse_error = "the MIME structure is nested too deeply to read"
    except Exception as exc:  # a parser bug or hostile input: quarantine, never crash the intake
        pm.parse_error = f"unreadable message ({type(exc).__name__}: {str(exc)[:200]})"
    return pm


def _parse_into(pm: ParsedMail, raw: bytes, limit: int | None, verifier: msgid.Verifier | None,
                own_addresses: frozenset[str]) -> None:
    body = raw.lstrip(b" \t\r\n")
    if not body:
        pm.parse_error = "empty message"
        return
    body = repair_header_block(body)
    msg = BytesParser(policy=LENIENT).parsebytes(_ENCLOSED.sub(rb"\1" + _OPAQUE_PREFIX + rb"\2", body))
    headers = _header_map(msg)
    if not headers:
        pm.parse_error = "no mail headers found (not an e-mail message)"
        return
    pm.defects = [type(d).__name__ for d in msg.defects]
    hint = _body_charset(msg)

    mid = single_message_id(_first(headers, "message-id"))
    if mid:
        pm.message_id = mid
        pm.external_id = mid if len(mid) <= 200 else "sha256:" + hashlib.sha256(mid.encode()).hexdigest()
    for name in ("from", "sender", "reply-to", "return-path"):
        pm.sender_name, pm.sender_address = parse_address(_first(headers, name))
        if pm.sender_address:
            if name != "from":
                pm.defects.append(f"sender taken from {name}")
            break
    _, reply = parse_address(_first(headers, "reply-to"))
    pm.reply_address = reply or pm.sender_address
    if pm.sender_name:
        pm.sender_name, ds = decode_header(pm.sender_name, "from", hint)
        pm.charsets.extend(d for d in ds if d.declared or d.used != "ascii")
    pm.subject, ds = decode_header(_first(headers, "subject"), "subject", hint)
    pm.charsets.extend(ds)
    pm.in_reply_to = single_message_id(_first(headers, "in-reply-to")) if _first(headers, "in-reply-to") else None
    pm.references = [m for v in headers.get("references", []) for m in message_ids(v)][-100:]
    pm.date = _parse_date(_first(headers, "date"))

    walker = _Walker(limit, hint)
    walker.walk(msg, 0)
    pm.charsets.extend(walker.charsets)
    pm.attachments = walker.attachments
    pm.html_only = walker.html_used and not walker.plain_used
    full = "\n\n".join(t for t, _ in walker.texts if t).strip()
    clean = "\n\n".join(c for _, c in walker.texts if c).strip()
    pm.full_text = full[:MAX_TEXT_CHARS]
    pm.text = (clean or full)[:MAX_TEXT_CHARS]
    pm.trimmed = pm.text != pm.full_text
    if walker.truncated:
        pm.defects.append(walker.truncated)

    ours_in_text = {m.decode("ascii", "replace") for m in _OUR_ID_IN_TEXT.findall(raw[:2_000_000])}
    verified_mentions = [m for m in ours_in_text if msgid.verify(m, verifier)[0]]
    ctype = msg.get_content_type()
    report_type = msg.get_param("report-type") if ctype == "multipart/report" else None
    ev = Evidence(headers=headers, sender=pm.sender_address, subject=pm.subject, content_type=ctype,
                  report_type=report_type if isinstance(report_type, str) else None,
                  dsn_actions=walker.dsn.get("actions", []), has_original=bool(walker.original_headers),
                  mentions_our_message=bool(verified_mentions))
    pm.kind, pm.kind_reasons = classify(ev)

    if pm.message_id and msgid.verify(pm.message_id, verifier)[0]:
        pm.ours = True
    elif pm.sender_address and pm.sender_address.lower() in own_addresses:
        pm.ours = True
    _thread(pm, walker, verified_mentions, verifier)
    if not pm.sender_address:
        pm.parse_error = "no sender address in From, Sender, Reply-To or Return-Path"


def _thread(pm: ParsedMail, walker: "_Walker", mentions: list[str], verifier: msgid.Verifier | None) -> None:
    def add(number: str | None, via: str) -> None:
        if number and number not in pm.thread_refs:
            pm.thread_refs.append(number)
            pm.thread_via.append(via)

    if pm.kind is MessageKind.BOUNCE:
        # Only our signed ids are trusted for a bounce: its sender is a mail server, not the customer.
        originals = [h for h in walker.original_headers]
        candidates = [single_message_id(h.get("message-id")) for h in originals] + sorted(mentions)
        for mid in filter(None, candidates):
            ok, number = msgid.verify(mid, verifier)
            if ok:
                add(number, f"bounced message {mid} is ours (signature verified)")
        pm.bounce = {**walker.dsn, "original_message_ids": [c for c in candidates if c][:5]}
        pm.bounce.pop("actions", None)
        return
    refs = ([pm.in_reply_to] if pm.in_reply_to else []) + list(reversed(pm.references))
    for mid in refs:
        ok, number = msgid.verify(mid, verifier)
        if ok:
            add(number, f"reply to our message {mid} (signature verified)")
        elif msgid.looks_ours(mid):
            pm.thread_via.append(f"reference {mid} looks like ours but its signature does not verify: ignored")
    for number in msgid.subject_numbers(pm.subject):
        add(number, "complaint number in the subject")


class _Walker:
    """Collects body texts, attachments, charset decisions and report parts, with bounded work."""

    def __init__(self, limit: int | None, hint: str | None = None):
        self.limit = limit
        self.hint = hint
        self.texts: list[tuple[str, str]] = []       # (full, clean) per body part
        self.attachments: list[Attachment] = []
        self.charsets: list[Decision] = []
        self.parts = 0
        self.truncated: str | None = None
        self.html_used = self.plain_used = False
        self.dsn: dict[str, Any] = {}
        self.original_headers: list[dict[str, str]] = []

    def walk(self, part: Message, depth: int) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS or depth > MAX_DEPTH:
            self.truncated = f"more than {MAX_PARTS} parts or {MAX_DEPTH} levels: the rest kept in the raw only"
            return
        ctype = part.get_content_type()
        if part.is_multipart():
            children = [p for p in part.get_payload() if isinstance(p, Message)]
            if ctype == "message/delivery-status":
                self._delivery_status(children)
                return
            if ctype == "multipart/alternative":
                self._alternative(children, depth)
                return
            for child in children:
                self.walk(child, depth + 1)
            return
        self._leaf(part, ctype)

    def _alternative(self, children: list[Message], depth: int) -> None:
        plain = [c for c in children if c.get_content_type() == "text/plain" and not _is_attachment(c)]
        if plain:
            before = len(self.texts)
            self._leaf(plain[0], "text/plain")
            if any(t.strip() for t, _ in self.texts[before:]):
                for other in children:
                    if other is not plain[0] and (other.is_multipart() or _is_attachment(other)):
                        self.walk(other, depth + 1)     # related images, calendar files...
                return
            del self.texts[before:]
        html = [c for c in children if c.get_content_type() == "text/html"]
        nested = [c for c in children if c.is_multipart()]
        best = (html or nested or children or [None])[-1]
        if best is not None:
            self.walk(best, depth + 1)

    def _leaf(self, part: Message, ctype: str) -> None:
        maintype = ctype.split("/", 1)[0]
        if maintype == "multipart":
            # A multipart whose boundary never appears: its body is plain text (common in old mail).
            ctype, maintype = "text/plain", "text"
        data = _payload_bytes(part)
        if ctype.startswith("application/x-kesu-enclosed-"):
            self._enclosed(part, data)
            return
        if ctype == "text/rfc822-headers":
            self._original(data)
            self._attach(part, "text/rfc822-headers", data, default_name="original-headers.txt")
            return
        if maintype == "text" and not _is_attachment(part) and ctype in ("text/plain", "text/html", "text/enriched",
                                                                          "text/richtext", "text/x-amp-html"):
            text, d = decode(data, _charset(part), f"body {ctype}")
            self.charsets.append(d)
            if ctype == "text/html" or ctype == "text/x-amp-html":
                full, clean = html_to_text(text)
                clean, _ = trim_reply(clean)
                self.html_used = True
            else:
                full = text.replace("\r\n", "\n").replace("\r", "\n").strip()
                clean, _ = trim_reply(full)
                self.plain_used = True
            self.texts.append((full, clean))
            return
        self._attach(part, ctype, data)

    def _attach(self, part: Message, ctype: str, data: bytes, default_name: str | None = None) -> None:
        name = _filename(part, self.charsets, self.hint)
        if not name:
            ext = mimetypes.guess_extension(ctype) or ".bin"
            name = default_name or f"attachment-{len(self.attachments) + 1}{ext}"
        self.attachments.append(Attachment.from_bytes(name[:255], ctype[:128], data, limit=self.limit))

    def _enclosed(self, part: Message, data: bytes) -> None:
        try:
            inner = BytesHeaderParser(policy=LENIENT).parsebytes(data[:256 * 1024])
            headers = {k.lower(): unfold(v) for k, v in inner.items()}
        except Exception:  # opaque bytes that are not a message after all
            headers = {}
        if headers:
            self.original_headers.append(headers)
        subject = decode_header(headers.get("subject"), "enclosed subject")[0] if headers else ""
        default = (re.sub(r"[\\/:*?\"<>|\r\n]+", "_", subject)[:80] or "message") + ".eml"
        self._attach(part, "message/rfc822", data, default_name=default)

    def _original(self, data: bytes) -> None:
        try:
            inner = BytesHeaderParser(policy=LENIENT).parsebytes(data[:256 * 1024])
            headers = {k.lower(): unfold(v) for k, v in inner.items()}
        except Exception:
            headers = {}
        if headers:
            self.original_headers.append(headers)

    def _delivery_status(self, blocks: list[Message]) -> None:
        actions, recipients, statuses, diagnostics = [], [], [], []
        for block in blocks[:50]:
            for key, value in block.items():
                k, v = key.lower(), unfold(str(value)).strip()
                if k == "action":
                    actions.append(v.split()[0].lower() if v else "")
                elif k in ("final-recipient", "original-recipient") and k == "final-recipient":
                    recipients.append(v.split(";", 1)[-1].strip())
                elif k == "status":
                    statuses.append(v[:20])
                elif k == "diagnostic-code":
                    diagnostics.append(v[:300])
        self.dsn = {"actions": actions, "recipients": recipients[:10], "status": statuses[:10],
                    "diagnostic": diagnostics[:5]}
        lines = [f"{r}: {s}" for r, s in zip(recipients, statuses)] + diagnostics
        if lines and not self.texts:
            self.texts.append(("\n".join(lines), "\n".join(lines)))


_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,80}[ \t]*:")
_OPEN_WORD = re.compile(rb"=\?[^?\s]+\?[QqBb]\?[^?\s]*$")
_BROKEN_WORD = re.compile(rb"=\?[^?\s]+\?[QqBb]\?[^?\s]*\r*\n[^ \t\r\n]")   # a line ends inside one


def repair_header_block(data: bytes) -> bytes:
    """Re-fold header lines broken without the leading whitespace, when the break is inside
    an RFC 2047 encoded word (seen in old Chinese mail): otherwise the rest of the header
    block would be read as the body."""
    end = data.find(b"\n\n")
    end2 = data.find(b"\r\n\r\n")
    if end2 != -1 and (end == -1 or end2 < end):
        end = end2
    head = data[: end if end != -1 else min(len(data), 256 * 1024)]
    if b"=?" not in head or not _BROKEN_WORD.search(head):     # the usual case, found quickly
        return data
    lines = head.split(b"\n")
    changed = False
    for i in range(1, len(lines)):
        line = lines[i]
        if not line.strip() or line[:1] in (b" ", b"\t") or _HEADER_LINE.match(line):
            continue
        if _OPEN_WORD.search(lines[i - 1].rstrip(b"\r")):
            lines[i] = b" " + line
            changed = True
    if not changed:
        return data
    return b"\n".join(lines) + data[len(head):]


def _body_charset(msg: Message) -> str | None:
    """The first declared text charset: the likely charset of raw 8-bit headers."""
    for i, part in enumerate(msg.walk()):
        if i > 20:
            break
        if part.get_content_maintype() in ("text", "multipart"):
            cs = _charset(part)
            if cs and cs.strip().lower() not in ("us-ascii", "ascii", ""):
                return cs
    return None


def _header_map(msg: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in msg.raw_items():
        out.setdefault(str(key).strip().lower(), []).append(str(value))
    return out


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    vals = headers.get(name)
    return vals[0] if vals else None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: keep the bytes as they came
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            data = payload.encode("ascii", "surrogateescape")
        else:
            data = b""
    return bytes(data)


def _charset(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
    except Exception:
        return None
    if isinstance(value, tuple):       # RFC 2231 (charset, language, value)
        value = value[2]
    return None if value is None else str(value)


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    if disposition == "attachment":
        return True
    try:
        return bool(part.get_param("filename", header="content-disposition") or part.get_param("name"))
    except Exception:
        return False


def _filename(part: Message, decisions: list[Decision], hint: str | None = None) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:
        return None
    if isinstance(name, tuple):
        name = name[2]
    if not name:
        return None
    text, ds = decode_header(str(name), "attachment name", hint)
    decisions.extend(d for d in ds if d.declared or d.used != "ascii")
    text = re.sub(r"[\x00-\x1f\\/]+", "_", text).strip()
    return text or None


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(unfold(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _sane_date(dt: datetime | None) -> datetime | None:
    """A Date header is the sender's claim: used only when nothing better is known and plausible."""
    now = datetime.now(timezone.utc)
    if dt is None or dt > now + timedelta(hours=1) or dt < now - timedelta(days=3650):
        return None
    return dt
