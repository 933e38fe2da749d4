"""Signed webhooks: one route, POST /webhooks/{source}, for every configured source.

Sources named ``weibo`` and ``douyin`` use those platforms' own verification schemes (see
`weibo.py`, `douyin.py`); every other source uses kesu's HMAC scheme (`signing.py`). Nothing is
stored before the request is verified; a verified message is committed before the 2xx.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import tzinfo
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from connectors.base import (AcceptResult, InboundMessage, IntakePort, MessageKind, OutboundMessage,
                             PermanentSendError, SendResult, Sender, TransientSendError, WindowClosedError)

from . import douyin, payload, signing, weibo
from .payload import PayloadError
from .signing import SignatureError

log = logging.getLogger(__name__)

PATH = "/webhooks/{source}"
MAX_BODY = 16 * 1024 * 1024          # a JSON body with base64 attachments; aiohttp's own limit applies too
NUMBER_TIMEOUT = 2.0                  # how long a generic webhook waits for its complaint number
SOURCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")   # channel "webhook:<name>" fits its 40 characters
RESERVED = {"wechat"}                 # served by its own channel
PLATFORMS = {"weibo", "douyin"}


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class WebhookChannel:
    name = "webhook"

    def __init__(self, sources: Mapping[str, Any], *, intake: IntakePort, attachment_limit: int,
                 timezone: str | tzinfo = "Asia/Shanghai", clock=time.time, max_skew: float = signing.MAX_SKEW,
                 number_timeout: float = NUMBER_TIMEOUT, send_timeout: float = 10.0):
        for name, src in sources.items():
            if name in RESERVED:
                raise ValueError(f"webhook source name {name!r} is reserved for its own channel")
            if not SOURCE_NAME.match(name):
                raise ValueError(f"webhook source name {name!r} must be 1-32 letters, digits, '-' or '_'")
            if not getattr(src, "secret", None):
                raise ValueError(f"webhook.sources.{name}.secret is required: a source without a secret is refused")
        self.sources = dict(sources)
        self.intake = intake
        self.attachment_limit = attachment_limit
        self.tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self.clock = clock
        self.max_skew = max_skew
        self.number_timeout = number_timeout
        self.timeout = aiohttp.ClientTimeout(total=send_timeout)
        self._nonces = signing.NonceCache(window=2 * max_skew)
        self._session: aiohttp.ClientSession | None = None

    # -- wiring ---------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle_post)
        app.router.add_get(PATH, self.handle_get)
        app.on_cleanup.append(lambda _app: self.close())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- inbound ----------------------------------------------------------------------------------
    async def handle_get(self, request: web.Request) -> web.Response:
        """Weibo's URL verification handshake; nothing else is served by GET."""
        source = request.match_info["source"]
        if source != "weibo" or source not in self.sources:
            return error(401, "unknown source")
        q = request.query
        try:
            self._window(weibo.seconds(q.get("timestamp") or "x"))
            weibo.check(self.sources[source].secret, q.get("timestamp"), q.get("nonce"), q.get("signature"))
        except SignatureError as exc:
            return error(401, str(exc))
        return web.Response(text=q.get("echostr", ""))

    async def handle_post(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in self.sources:
            return error(401, "unknown source")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return error(413, "body too large")
        body = await request.read()
        handler = {"weibo": self._weibo, "douyin": self._douyin}.get(source, self._generic)
        try:
            return await handler(source, request, body)
        except SignatureError as exc:
            return error(401, str(exc))
        except PayloadError as exc:
            return error(400, f"invalid or missing field {exc.field}: {exc.problem}", field=exc.field)
        except _StoreFailed:
            return error(503, "could not store the message, try again")

    def _window(self, ts: float) -> None:
        if abs(self.clock() - ts) > self.max_skew:
            raise SignatureError(f"timestamp is more than {int(self.max_skew)} seconds off")

    async def _generic(self, source: str, request: web.Request, body: bytes) -> web.Response:
        h = request.headers
        signing.verify(self.sources[source].secret, h.get(signing.TIMESTAMP_HEADER), h.get(signing.SIGNATURE_HEADER),
                       body, self.clock(), self.max_skew)
        f = payload.parse(payload.load_object(body), attachment_limit=self.attachment_limit, tz=self.tz)
        msg = InboundMessage(
            channel=f"webhook:{source}", external_id=f["event_id"],
            sender=Sender(handle=f["sender_id"], name=f["name"], email=f["email"], phone=f["phone"]),
            text=f["text"], received_at=f["created_at"], attachments=f["attachments"], raw=body,
            reply_to={"source": source, "sender_id": f["sender_id"], "event_id": f["event_id"]},
            meta={"source": source, **f["meta"]})
        result = await self._accept(msg)
        number = await self._number(msg, result, self.number_timeout)
        return web.json_response({"status": "accepted" if result is AcceptResult.NEW else "duplicate",
                                  "event_id": f["event_id"], "complaint": number})

    async def _weibo(self, source: str, request: web.Request, body: bytes) -> web.Response:
        q = request.query
        self._window(weibo.seconds(q.get("timestamp") or "x"))
        weibo.check(self.sources[source].secret, q.get("timestamp"), q.get("nonce"), q.get("signature"))
        self._nonces.check(q["timestamp"], q["nonce"], body, self.clock())
        f = weibo.parse(payload.load_object(body))
        msg = InboundMessage(
            channel="webhook:weibo", external_id=f["external_id"], sender=Sender(handle=f["sender_id"]),
            text=f["text"], received_at=f["created_at"], raw=body, kind=f["kind"],
            reply_to={"source": "weibo", "sender_id": f["sender_id"], "receiver_id": f["receiver_id"]},
            meta={"source": "weibo", **f["meta"]})
        await self._accept(msg)
        return web.Response(text="")   # Weibo wants a quick empty 200; the acknowledgement goes by the API

    async def _douyin(self, source: str, request: web.Request, body: bytes) -> web.Response:
        douyin.check(self.sources[source].secret, request.headers.get(douyin.SIGNATURE_HEADER), body)
        data = payload.load_object(body)
        if data.get("event") == "verify_webhook":
            return web.json_response({"challenge": douyin.content_of(data).get("challenge")})
        f = douyin.parse(data, request.headers.get("Msg-Id"), body)
        msg = InboundMessage(
            channel="webhook:douyin", external_id=f["external_id"], sender=Sender(handle=f["sender_id"]),
            text=f["text"], received_at=f["created_at"], raw=body, kind=f["kind"],
            reply_to={"source": "douyin", "sender_id": f["sender_id"], "to_user_id": f["to_user_id"],
                      "conversation_id": f["meta"].get("conversation_id")},
            meta={"source": "douyin", **f["meta"]})
        result = await self._accept(msg)
        return web.json_response({"status": "accepted" if result is AcceptResult.NEW else "duplicate"})

    async def _accept(self, msg: InboundMessage) -> AcceptResult:
        try:
            return await self.intake.accept(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("webhook: could not store a message from %s", msg.channel)
            raise _StoreFailed from exc

    async def _number(self, msg: InboundMessage, result: AcceptResult, timeout: float) -> str | None:
        """The complaint number for the answer: the one already known for a repeat, else wait a little."""
        if msg.kind is not MessageKind.MESSAGE:
            return None
        try:
            if result is AcceptResult.DUPLICATE:
                seen = await self.intake.outcome(msg.channel, msg.external_id)
                if seen and seen[1]:
                    return seen[1]
            return await self.intake.process_now(msg.channel, msg.external_id, timeout=timeout) if timeout > 0 else None
        except asyncio.CancelledError:
            raise
        except Exception:   # the message is committed; the number will reach the customer by the outbox
            log.exception("webhook: no complaint number yet for %s", msg.channel)
            return None

    # -- outbound ---------------------------------------------------------------------------------
    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def send(self, item: OutboundMessage) -> SendResult:
        reply_to = item.reply_to or {}
        source = reply_to.get("source") or item.channel.partition(":")[2]
        src = self.sources.get(source)
        if src is None:
            raise PermanentSendError(f"webhook source {source!r} is not configured")
        text = (item.payload or {}).get("text")
        if not text:
            raise PermanentSendError("nothing to send: payload has no text")
        if source == "weibo":
            return await self._send_weibo(src, reply_to, str(text))
        if not src.callback_url:
            raise WindowClosedError(f"webhook source {source} has no callback_url to answer on")
        p = item.payload
        body = json.dumps({
            "delivery_id": item.dedupe_key, "type": p.get("template") or item.kind,
            "recipient": {"id": reply_to.get("sender_id")}, "in_reply_to": reply_to.get("event_id"),
            "complaint": p.get("number"), "subject": p.get("subject"), "text": text,
            "automatic": bool(p.get("automatic"))}, ensure_ascii=False).encode()
        headers = {**signing.signed_headers(src.secret, body, self.clock()), "X-Kesu-Delivery": item.dedupe_key}
        return await self._post(src.callback_url, body, headers)

    async def _post(self, url: str, body: bytes | dict, headers: dict | None = None) -> SendResult:
        session = await self._http()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                answer = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TransientSendError(f"callback failed: {exc!r}") from exc
        if status in (408, 425, 429) or status >= 500:
            raise TransientSendError(f"callback answered HTTP {status}")
        if status == 410:
            raise WindowClosedError("callback answered 410: the recipient cannot be reached here")
        if status >= 300:
            raise PermanentSendError(f"callback answered HTTP {status}: {answer[:200]!r}")
        try:
            ext = json.loads(answer).get("id") if answer else None
        except (ValueError, AttributeError):
            ext = None
        return SendResult(external_id=str(ext) if ext is not None else None, detail=f"HTTP {status}")

    async def _send_weibo(self, src, reply_to: dict, text: str) -> SendResult:
        """Fan-service reply API; the source's callback_url is the API URL with its access_token."""
        if not src.callback_url or "access_token=" not in src.callback_url:
            raise WindowClosedError("weibo source has no callback_url with an access_token to reply with")
        parts = urlsplit(src.callback_url)
        form = dict(parse_qsl(parts.query))
        form.update(type="text", data=quote(json.dumps({"text": text}, ensure_ascii=False)),
                    receiver_id=str(reply_to.get("sender_id") or ""))
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        session = await self._http()
        try:
            async with session.post(url, data=form) as resp:
                status, answer = resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TransientSendError(f"Weibo reply failed: {exc!r}") from exc
        if status >= 500 or status == 429:
            raise TransientSendError(f"Weibo reply answered HTTP {status}")
        try:
            data = json.loads(answer)
        except ValueError:
            data = {}
        if status >= 300 or (isinstance(data, dict) and data.get("error_code")):
            detail = data.get("error") if isinstance(data, dict) else None
            raise PermanentSendError(f"Weibo reply refused: HTTP {status} {detail or answer[:200]!r}")
        return SendResult(external_id=str(data.get("id")) if isinstance(data, dict) and data.get("id") else None,
                          detail="weibo reply")


class _StoreFailed(Exception):
    pass
