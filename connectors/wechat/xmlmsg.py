"""WeChat's flat XML: parse a pushed message into a dict, build a passive reply."""
from __future__ import annotations

import time
from xml.etree import ElementTree

MAX_XML = 64 * 1024   # WeChat's pushes are a few hundred bytes


class BadXml(ValueError):
    pass


def parse(body: bytes) -> dict[str, str]:
    """Top-level child elements of <xml> as text. No DTDs or entities: WeChat never sends them,
    and refusing them rules out entity-expansion tricks."""
    if len(body) > MAX_XML:
        raise BadXml("body too large")
    if b"<!" in body.split(b"<xml", 1)[0]:   # a DTD (the only place entities are declared) precedes the root
        raise BadXml("DTDs and entities are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError) as exc:
        raise BadXml(f"not XML: {exc}") from None
    if root.tag != "xml":
        raise BadXml("root element is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)}


def cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA: close and reopen around it
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, now: int | None = None) -> bytes:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(now if now is not None else time.time())}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content>{cdata(content)}</Content></xml>").encode()
