"""Turning mail bytes into text: declared charsets mapped to their real-world supersets,
and detection when the label is missing, empty, unknown or wrong. Never raises.

Chinese mail labels GBK and GB18030 text as gb2312 all the time (and gb2312 cannot decode
the characters outside its 6 763 hanzi), so every GB label is read as GB18030, its superset.
"""
from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass

# Labels seen in the wild mapped to the codec that really decodes what senders produce.
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "hz": "hz",
    "euc_kr": "cp949", "cp949": "cp949",
    "shift_jis": "cp932", "cp932": "cp932", "euc_jp": "euc_jp",
    "iso2022_jp": "iso2022_jp_2", "iso2022_jp_2": "iso2022_jp_2",
    "big5": "big5hkscs", "big5hkscs": "big5hkscs", "cp950": "big5hkscs",
    "ascii": "cp1252", "latin_1": "cp1252", "iso8859_1": "cp1252", "cp1252": "cp1252",
}
# Labels Python does not know, by their usual meaning.
_ALIASES = {
    "x-gbk": "gb18030", "gb_2312-80": "gb18030", "x-euc-cn": "gb18030", "chinese": "gb18030",
    "csgb2312": "gb18030", "x-mac-chinesesimp": "gb18030", "gb2312-80": "gb18030",
    "x-sjis": "cp932", "shift-jis": "cp932", "ks_c_5601": "cp949", "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso8859_8", "iso-8859-6-i": "iso8859_6", "x-user-defined": "cp1252",
    "utf8mb4": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8",
}
# Labels that say "we do not know": detect.
_UNKNOWN = {"", "x-unknown", "unknown", "unknown-8bit", "x-user-defined-unknown", "default", "none", "charset"}

DETECT_SAMPLE = 64 * 1024      # detection reads at most this much: bounded work on huge parts


@dataclass(frozen=True)
class Decision:
    """How one piece of text was decoded, kept in the message's meta for agents and tests."""
    where: str                 # "subject", "from", "body text/plain", "attachment name"...
    declared: str | None       # the label as written, None when absent
    used: str                  # the codec actually used
    how: str                   # declared | superset | detected | fallback

    def as_dict(self) -> dict[str, str | None]:
        return {"where": self.where, "declared": self.declared, "used": self.used, "how": self.how}


def codec_for(label: str | None) -> str | None:
    """The codec to use for a declared label, or None when the label is missing or unknown."""
    if label is None:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    try:
        found = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    if found in ("utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "rot-13"):
        return found if not found.startswith("rot") else None
    try:
        codecs.getincrementaldecoder(found)
    except (LookupError, TypeError):
        return None             # e.g. bytes-to-bytes codecs such as "base64" named as a charset
    return _SUPERSETS.get(found.replace("-", "_"), found)


def decode(data: bytes, label: str | None, where: str = "text") -> tuple[str, Decision]:
    """Decode `data` declared as `label`; never raises."""
    declared = None if label is None else label.strip().strip("\"'")
    codec = codec_for(declared)
    if codec is not None:
        if not _has_8bit(data) and codec not in _SEVEN_BIT_CODECS:
            return data.decode("ascii"), Decision(where, declared, "ascii", "declared")
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError, ValueError):
            pass                 # the label is wrong: detect instead
        else:
            return text, Decision(where, declared, codec, "declared" if _same(declared, codec) else "superset")
    text, used = detect_and_decode(data)
    if codec is not None and used == "fallback":
        # Detection found nothing better: the declared codec with replacement characters.
        return data.decode(codec, errors="replace"), Decision(where, declared, codec, "fallback")
    return text, Decision(where, declared, used if used != "fallback" else "utf-8",
                          "detected" if used != "fallback" else "fallback")


_SEVEN_BIT_CODECS = {"utf-7", "iso2022_jp_2", "iso2022_jp", "iso2022_kr", "hz", "utf-16", "utf-32",
                     "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"}


def _same(declared: str | None, codec: str) -> bool:
    try:
        return bool(declared) and codecs.lookup(declared.lower()).name == codecs.lookup(codec).name
    except (LookupError, ValueError):
        return False


def detect_and_decode(data: bytes) -> tuple[str, str]:
    """(text, codec) by detection: UTF-8, then GB18030 when the result reads as Chinese,
    then charset-normalizer on a bounded sample; ("fallback" with U+FFFD) when all fail."""
    if not _has_8bit(data):
        if b"\x1b$" in data:  # ISO-2022 escape sequences (Japanese, Chinese)
            for codec in ("iso2022_jp_2", "hz"):
                try:
                    return data.decode(codec), codec
                except UnicodeDecodeError:
                    pass
        return data.decode("ascii"), "ascii"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
        if _mostly_chinese(text):
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    guess = _normalizer_guess(data[:DETECT_SAMPLE])
    if guess:
        codec = codec_for(guess) or guess
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            try:  # the sample decoded but the whole does not: keep what we can
                return data.decode(codec, errors="replace"), codec
            except LookupError:
                pass
    return data.decode("utf-8", errors="replace"), "fallback"


def _normalizer_guess(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
        best = from_bytes(sample, steps=5, chunk_size=512, threshold=0.3).best()
    except Exception:  # the detector is a heuristic: any failure means "no guess"
        return None
    return best.encoding if best is not None else None


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


def _mostly_chinese(text: str, sample: int = 4000) -> bool:
    """True when most non-ASCII characters are CJK ideographs or CJK punctuation."""
    wide = [c for c in text[:sample] if ord(c) > 0x7F]
    if not wide:
        return True
    good = sum(1 for c in wide if _is_chinese_char(c))
    return good / len(wide) >= 0.8


def _is_chinese_char(c: str) -> bool:
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF
            or 0x3400 <= o <= 0x4DBF or 0x2000 <= o <= 0x206F or 0x00A0 <= o <= 0x00FF
            or 0x2460 <= o <= 0x24FF or 0x2500 <= o <= 0x257F or 0x25A0 <= o <= 0x25FF
            or 0x0391 <= o <= 0x03C9 or 0x0401 <= o <= 0x0451 or unicodedata.category(c) == "So")


def readable(text: str) -> bool:
    """Heuristic used by tests and the CLI: no replacement characters, no mojibake runs."""
    return "\ufffd" not in text
