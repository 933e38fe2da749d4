"""Clean text from mail bodies: HTML to text, and the quoted history and signature trimmed.

Only the text an agent reads is trimmed; the raw message is always kept. When trimming
would leave nothing (a bare forward, a reply that is all quote) the untrimmed text is used.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_HTML_CHARS = 1_000_000    # beyond this the HTML is cut before parsing: bounded work

_SKIP = {"script", "style", "head", "title", "noscript", "template", "xml", "svg", "object"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "param", "source",
         "track", "wbr", "basefont", "frame", "isindex", "keygen"}
_BLOCK = {"p", "div", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "section",
          "article", "header", "footer", "center", "dl", "dd", "dt", "form", "fieldset", "address", "blockquote",
          "tbody", "thead", "tfoot", "caption", "nav", "aside", "main", "figure", "figcaption"}
# Containers of quoted history or signatures in the HTML of common clients
# (Gmail, Outlook, Thunderbird, Apple Mail, Yahoo, NetEase 163/126, QQ Mail, Foxmail).
_QUOTE_CLASSES = {"gmail_quote", "gmail_signature", "moz-cite-prefix", "moz-signature", "yahoo_quoted",
                  "ntes-pcmail-signature", "ntes-signature", "mail-signature", "signature", "qmbox",
                  "readmail_locationtip", "ms-outlook-mobile-signature"}
_QUOTE_IDS = {"divrplyfwdmsg", "appendonsend", "signature", "ntes-pcmail-signature", "divneteasemailcard",
              "isforwardcontent", "isreplycontent", "origbody", "reply-content", "mail-app-auto-default-signature",
              "spneditorsign", "ms-outlook-mobile-signature"}


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.full: list[str] = []      # everything visible
        self.clean: list[str] = []     # without quoted history and signature containers
        self.skip = 0                  # depth inside script/style/head...
        self.quote = 0                 # depth inside a quote/signature container
        self.pre = 0

    def _emit(self, s: str) -> None:
        if self.skip:
            return
        self.full.append(s)
        if not self.quote:
            self.clean.append(s)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if self.quote and tag not in _VOID:
            self.quote += 1
        elif tag not in _VOID and _is_quote(tag, attrs):
            self.quote = 1
        if tag == "br":
            self._emit("\n")
        elif tag == "li":
            self._emit("\n- ")
        elif tag in ("td", "th"):
            self._emit(" ")
        elif tag == "pre":
            self.pre += 1
            self._emit("\n")
        elif tag in _BLOCK:
            self._emit("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self._emit(f"[{alt.strip()}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag in _BLOCK or tag == "li":
            self._emit("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if self.quote and tag not in _VOID:
            self.quote -= 1

    def handle_data(self, data: str) -> None:
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
        self._emit(data)


def _is_quote(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    a = {k.lower(): (v or "") for k, v in attrs}
    if tag == "blockquote":
        return True
    classes = set(a.get("class", "").lower().split())
    return bool(classes & _QUOTE_CLASSES) or a.get("id", "").lower() in _QUOTE_IDS


def html_to_text(html: str) -> tuple[str, str]:
    """(full text, text without quoted history and signature containers)."""
    conv = _Converter()
    try:
        conv.feed(html[:MAX_HTML_CHARS])
        conv.close()
    except Exception:  # HTMLParser is lenient, but never let markup stop the intake
        pass
    return _tidy("".join(conv.full)), _tidy("".join(conv.clean))


def _tidy(text: str) -> str:
    text = text.replace("\xa0", " ").replace("\u3000", " ")
    lines = [line.strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# Plain-text markers of quoted history.
_SEPARATOR = re.compile(
    r"^\s*[-_=*]{2,}\s*(original message|原始邮件|原邮件|forwarded message|转发邮件|回复的原邮件|"
    r"邮件原文|以下为原始邮件|reply message|回复邮件)\s*[-_=*]{2,}\s*$", re.I)
_BBS_QUOTE = re.compile(r"^\s*【\s*在.{0,120}的(大作|来信)中提到\s*[:：]?\s*】")
_WROTE = re.compile(r"^\s*(on\b.{0,300}\bwrote|在.{0,300}写道|.{0,200}于.{0,120}写道)\s*[:：]?\s*$", re.I)
_HEADER_START = re.compile(r"^\s*\**(from|发件人|寄件者|发信人)\**\s*[:：]", re.I)
_HEADER_NEXT = re.compile(r"^\s*\**(sent|date|发送时间|日期|时间|寄件日期|发送日期|to|收件人)\**\s*[:：]", re.I)
_UNDERSCORES = re.compile(r"^\s*_{8,}\s*$")
_SIGNATURE_MARK = re.compile(r"^--\s?$")
_SENT_FROM = re.compile(
    r"^\s*(发自我的.{1,20}|发自.{0,12}(邮箱|邮件|手机|客户端|mail).{0,12}|来自.{0,12}(邮箱|邮件|客户端).{0,12}|"
    r"sent from my .{1,30}|sent from .{0,20}(mail|outlook|iphone|android).{0,20}|get outlook for .{1,20})\s*$", re.I)


def trim_reply(text: str) -> tuple[str, bool]:
    """(text without quoted history and signature, whether anything was trimmed)."""
    lines = text.split("\n")
    cut = _history_start(lines)
    kept = lines[:cut]
    # Lines quoted with ">" anywhere in what is left.
    kept = [ln for ln in kept if not ln.lstrip().startswith(">")]
    # The signature: after a "-- " line, or a trailing "sent from my phone" line.
    for i, ln in enumerate(kept):
        if _SIGNATURE_MARK.match(ln):
            kept = kept[:i]
            break
    while kept and (not kept[-1].strip() or _SENT_FROM.match(kept[-1])):
        kept.pop()
    clean = "\n".join(kept).strip()
    if not clean:
        return text.strip(), False
    return clean, clean != text.strip()


def _history_start(lines: list[str]) -> int:
    for i, ln in enumerate(lines):
        if _SEPARATOR.match(ln) or _BBS_QUOTE.match(ln):
            return i
        if _WROTE.match(ln) or (i + 1 < len(lines) and len(ln) < 200
                                and _WROTE.match(ln + " " + lines[i + 1])):
            return i
        if _UNDERSCORES.match(ln) and any(_HEADER_START.match(x) for x in lines[i + 1:i + 3]):
            return i
        if _HEADER_START.match(ln) and any(_HEADER_NEXT.match(x) for x in lines[i + 1:i + 5]):
            return i
    return len(lines)
