"""Header values as people meant them: RFC 2047 encoded words (split multi-byte characters
joined before decoding), raw 8-bit bytes (GB18030 from old Chinese clients, UTF-8 from
new ones), addresses and message ids. Works on the raw header string; never raises.
"""
from __future__ import annotations

import base64
import binascii
import re
from email.utils import getaddresses, parseaddr

from .charsets import Decision, codec_for, decode

MAX_HEADER_CHARS = 16 * 1024   # a 200 KB header is cut before any work is done on it

_ENCODED_WORD = re.compile(r"=\?([^?\s]+?)\?([QqBb])\?([^?]*?)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<([^<>\s\x00-\x1f\x7f]{1,250})>")   # no control characters (PostgreSQL refuses NUL)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def unfold(value: str) -> str:
    return _FOLD.sub("", value).replace("\r", "").replace("\n", " ")


def raw_bytes(value: str) -> bytes:
    """The header's original bytes (the parser keeps 8-bit bytes as surrogate escapes)."""
    try:
        return value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def decode_header(value: str | None, where: str = "header", hint: str | None = None) -> tuple[str, list[Decision]]:
    """Decode one raw header value to text, with the charset decisions taken. `hint` is the
    body's declared charset: old clients wrote raw 8-bit headers in that charset."""
    if value is None:
        return "", []
    value = unfold(str(value)[:MAX_HEADER_CHARS])
    decisions: list[Decision] = []
    data = raw_bytes(value)
    if not data.isascii():
        value, d = _decode_8bit(data, hint, where + " (8-bit)")
        decisions.append(d)
    if "=?" not in value:
        return value.strip(), decisions
    return _decode_words(value, where, decisions).strip(), decisions


def _decode_8bit(data: bytes, hint: str | None, where: str) -> tuple[str, Decision]:
    try:
        return data.decode("utf-8"), Decision(where, None, "utf-8", "detected")
    except UnicodeDecodeError:
        pass
    codec = codec_for(hint)
    if codec and codec not in ("cp1252", "utf-8"):
        try:
            return data.decode(codec), Decision(where, hint, codec, "body charset")
        except (UnicodeDecodeError, LookupError):
            pass
    return decode(data, None, where)


def _decode_words(value: str, where: str, decisions: list[Decision]) -> str:
    out: list[str] = []
    pending: list[bytes] = []      # consecutive encoded words of one charset, decoded together
    pending_charset: str | None = None
    pos = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            text, d = decode(b"".join(pending), pending_charset, where)
            out.append(text)
            decisions.append(d)
        pending, pending_charset = [], None

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        # Whitespace between two encoded words is not part of the text (RFC 2047 section 6.2).
        if between and not (last_was_word and between.isspace()):
            flush()
            out.append(between)
        charset = m.group(1).split("*", 1)[0]          # RFC 2231 language suffix: utf-8*zh
        data = _word_bytes(m.group(2), m.group(3))
        if pending and (codec_for(charset) or charset.lower()) != (codec_for(pending_charset) or
                                                                   (pending_charset or "").lower()):
            flush()
        pending_charset = charset
        pending.append(data)
        pos, last_was_word = m.end(), True
    flush()
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "Bb":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return text.encode("ascii", "replace")
    out = bytearray()
    i, raw = 0, text.replace("_", " ").encode("ascii", "replace")
    while i < len(raw):
        if raw[i] == 0x3D and _is_hex(raw[i + 1:i + 3]):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _is_hex(b: bytes) -> bool:
    return len(b) == 2 and all(c in b"0123456789abcdefABCDEF" for c in b)


def parse_address(value: str | None) -> tuple[str | None, str | None]:
    """(raw display name, address) of the first mailbox in a raw address header; (None, None) if none.
    The name is still encoded (RFC 2047 or 8-bit): decode it with `decode_header`."""
    if not value:
        return None, None
    raw = unfold(str(value)[:MAX_HEADER_CHARS])
    try:
        pairs = getaddresses([raw])
    except Exception:  # the stdlib parser on hostile input: fall back to a plain search
        pairs = [parseaddr(raw)]
    for name, addr in pairs:
        addr = clean_address(addr)
        if addr:
            return (name.strip().strip('"').strip() or None), addr
    m = _ADDRESS.search(raw)
    if m:
        return None, clean_address(m.group(0))
    return None, None


def clean_address(addr: str | None) -> str | None:
    if not addr:
        return None
    addr = addr.strip().strip("<>").strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or " " in addr or "." not in domain:
        return None
    try:
        addr.encode("ascii")
    except UnicodeEncodeError:
        # Internationalised addresses (RFC 6532) are fine; 8-bit garbage is not.
        if any(0xDC80 <= ord(c) <= 0xDCFF for c in addr):
            return None
    return f"{local}@{domain.lower()}"


def message_ids(value: str | None) -> list[str]:
    """Message ids (with angle brackets) in a References / In-Reply-To / Message-ID value."""
    if not value:
        return []
    return [f"<{m}>" for m in _MSGID.findall(unfold(str(value)[:MAX_HEADER_CHARS]))]


def single_message_id(value: str | None) -> str | None:
    ids = message_ids(value)
    if ids:
        return ids[0]
    value = unfold(value or "").strip()
    if not value or len(value) >= 250 or any(c.isspace() or ord(c) < 32 or c in "<>\x7f" for c in value):
        return None
    return f"<{value}>"
