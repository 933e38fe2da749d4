"""WeChat Official Account: server URL check, pushed messages (plain and safe mode), passive
replies, and customer-service messages for everything we send later.

A pushed message is answered within WeChat's 5 seconds: it is committed to the inbox first, then
the pipeline gets what is left of a 4-second budget to register it; if a complaint number comes
back in time the acknowledgement travels in the passive reply, otherwise we answer "success" and
the outbox acknowledgement goes out through the customer-service API.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import (AcceptResult, Attachment, InboundMessage, IntakePort, MessageKind, OutboundMessage,
                             PermanentSendError, SendResult, Sender)
from models import InboxItem, OutboxItem

from . import claims, xmlmsg
from .api import WechatApi
from .crypto import SignatureError, WechatCrypto, check_plain

log = logging.getLogger(__name__)

CHANNEL = "wechat"
PATH = "/webhooks/wechat"
REPLY_BUDGET = 4.0        # seconds from arrival to our answer; WeChat gives up (and retries) at 5
MEDIA_BUDGET = 1.5        # at most this long fetching an image or voice file before accepting
MAX_SKEW = 300            # seconds a signed timestamp may differ from our clock
CLAIM_KEEP = timedelta(days=14)   # answer claims outlive any outbox retry of the acknowledgement

WELCOME_TEXT = ("欢迎关注！如需投诉，请直接在这里发送文字、图片或语音，写明问题经过、订单号和联系方式。"
                "我们收到后会回复投诉编号，处理进度也会在这里通知您。")


def ack_text(number: str) -> str:
    return f"您的投诉已受理，编号 {number}。我们会尽快处理，进度将在这里通知您。"


class WechatChannel:
    name = CHANNEL

    def __init__(self, *, appid: str, secret: str, token: str, aes_key: str | None, mode: str, api_base: str,
                 intake: IntakePort, sessionmaker: async_sessionmaker[AsyncSession], attachment_limit: int,
                 clock=time.time, max_skew: float = MAX_SKEW, reply_budget: float = REPLY_BUDGET):
        if mode not in ("safe", "plain"):
            raise ValueError(f"wechat mode must be safe or plain, got {mode!r}")
        if mode == "safe" and not aes_key:
            raise ValueError("wechat.aes_key (EncodingAESKey) is required in safe mode")
        if not token or not appid or not secret:
            raise ValueError("wechat.appid, wechat.secret and wechat.token are required")
        self.appid = appid
        self.token = token
        self.mode = mode
        self.crypto = WechatCrypto(token, aes_key, appid) if aes_key else None
        self.api = WechatApi(appid, secret, api_base)
        self.intake = intake
        self.sessionmaker = sessionmaker
        self.attachment_limit = attachment_limit
        self.clock = clock
        self.max_skew = max_skew
        self.reply_budget = reply_budget
        self._nonces: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    # -- wiring ---------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle_verify)
        app.router.add_post(PATH, self.handle_message)
        app.on_cleanup.append(lambda _app: self.close())

    async def close(self) -> None:
        await self.api.aclose()

    def background(self) -> list:
        return [self._housekeeping()]

    async def _housekeeping(self, every: float = 3600.0) -> None:
        """Drop answer claims older than CLAIM_KEEP, hourly; a failure only waits for the next round."""
        while True:
            try:
                n = await claims.purge(self.sessionmaker, CLAIM_KEEP)
                if n:
                    log.info("wechat: forgot %d old answer claims", n)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wechat: purging old answer claims failed")
            await asyncio.sleep(every)

    # -- inbound ----------------------------------------------------------------------------------
    async def handle_verify(self, request: web.Request) -> web.Response:
        """Server URL check: answer the echostr when the signature is ours."""
        q = request.query
        try:
            self._check_time(q.get("timestamp"))
            echostr = q.get("echostr") or ""
            if q.get("msg_signature"):   # WeCom-style check: the echostr itself is encrypted
                if self.crypto is None:
                    raise SignatureError("no EncodingAESKey configured")
                self.crypto.check(q.get("timestamp"), q.get("nonce"), echostr, q.get("msg_signature"))
                echostr = self.crypto.decrypt(echostr).decode("utf-8", "replace")
            else:
                check_plain(self.token, q.get("timestamp"), q.get("nonce"), q.get("signature"))
        except SignatureError as exc:
            return web.Response(status=401, text=f"invalid request: {exc}")
        return web.Response(text=echostr)

    async def handle_message(self, request: web.Request) -> web.Response:
        started = asyncio.get_running_loop().time()
        if request.content_length is not None and request.content_length > xmlmsg.MAX_XML:
            return web.Response(status=413, text="body too large")
        body = await request.read()
        q = request.query
        try:
            self._check_time(q.get("timestamp"))
            fields, encrypted, inner = self._open(q, body)
        except SignatureError as exc:
            return web.Response(status=401, text=f"invalid request: {exc}")
        except xmlmsg.BadXml as exc:
            # Only reachable after a valid signature (or with plain mode's unsigned body): a client error
            return web.Response(status=400, text=f"bad message: {exc}")
        try:
            msg = await self._message(fields, inner, started)
        except ValueError as exc:
            return web.Response(status=400, text=f"bad message: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("wechat: could not read a message")
            return web.Response(status=503, text="try again")
        held = await self._hold_answer(msg, started)   # before the commit: see claims.py
        try:
            result = await self.intake.accept(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("wechat: could not store a message")
            await self._settle(msg, held, claims.RELEASED)
            return web.Response(status=503, text="try again")   # not committed: WeChat must retry
        # Committed. From here on every answer is a 200: the message is safe whatever happens next.
        try:
            content = await self._passive_content(msg, result, held, started)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("wechat: passive reply for %s failed; the outbox will answer", msg.external_id)
            await self._settle(msg, held, claims.RELEASED)
            content = None
        if content is None:
            return web.Response(text="success")
        reply = xmlmsg.text_reply(msg.sender.handle, fields.get("ToUserName", ""), content, int(self.clock()))
        if encrypted:
            reply = self.crypto.envelope(reply, str(int(self.clock())), str(secrets.randbelow(10**10)))
        return web.Response(body=reply, content_type="application/xml", charset="utf-8")

    def _check_time(self, timestamp: str | None) -> None:
        try:
            ts = int(timestamp or "")
        except ValueError:
            raise SignatureError("missing or bad timestamp") from None
        if abs(self.clock() - ts) > self.max_skew:
            raise SignatureError("timestamp outside the allowed window")

    def _open(self, q, body: bytes) -> tuple[dict[str, str], bool, bytes]:
        """Verify the request; return the message's fields, whether it came encrypted, and its XML."""
        if q.get("encrypt_type") == "aes" or q.get("msg_signature"):
            if self.crypto is None:
                raise SignatureError("encrypted message but no EncodingAESKey configured")
            outer = xmlmsg.parse(body)
            self.crypto.check(q.get("timestamp"), q.get("nonce"), outer.get("Encrypt"), q.get("msg_signature"))
            inner = self.crypto.decrypt(outer["Encrypt"])
            return xmlmsg.parse(inner), True, inner
        if self.mode == "safe":
            raise SignatureError("plaintext messages are refused in safe mode")
        check_plain(self.token, q.get("timestamp"), q.get("nonce"), q.get("signature"))
        self._remember_nonce(q["timestamp"], q["nonce"], body)
        return xmlmsg.parse(body), False, body

    def _remember_nonce(self, timestamp: str, nonce: str, body: bytes) -> None:
        """Plain mode signs no body: a (timestamp, nonce) seen with another body is a forgery."""
        now = self.clock()
        while self._nonces:
            first = next(iter(self._nonces.values()))
            if first[0] >= now - 2 * self.max_skew and len(self._nonces) < 100_000:
                break
            self._nonces.popitem(last=False)
        digest = hashlib.sha256(body).hexdigest()
        seen = self._nonces.get((timestamp, nonce))
        if seen is not None and seen[1] != digest:
            raise SignatureError("nonce reused with another body")
        self._nonces[(timestamp, nonce)] = (now, digest)

    async def _message(self, f: dict[str, str], raw: bytes, started: float) -> InboundMessage:
        openid, mtype, created = f.get("FromUserName"), f.get("MsgType"), f.get("CreateTime")
        if not openid or not mtype or not created:
            raise ValueError("FromUserName, MsgType and CreateTime are required")
        try:
            received = datetime.fromtimestamp(int(created), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise ValueError("CreateTime is not a unix time") from None
        meta: dict[str, Any] = {"wechat_type": mtype}
        attachments: tuple[Attachment, ...] = ()
        kind = MessageKind.MESSAGE
        if mtype == "event":
            event = f.get("Event", "")
            external_id = f"event:{openid}:{created}:{event}"
            kind = MessageKind.EVENT
            meta.update(event=event, event_key=f.get("EventKey") or None)
            text = f"[事件] {event}"
        else:
            if not f.get("MsgId"):
                raise ValueError("MsgId is required")
            external_id = f["MsgId"]
            text, media = self._content(f, meta)
            if media and await self.intake.outcome(CHANNEL, external_id) is None:   # a retry needs no second fetch
                attachments = (await self._fetch(media, mtype, started),)
        msg = InboundMessage(
            channel=CHANNEL, external_id=external_id, sender=Sender(handle=openid), text=text,
            received_at=received, attachments=attachments, raw=raw,
            reply_to={"openid": openid, "account": f.get("ToUserName"), "msg": external_id}, kind=kind, meta=meta)
        return msg

    @staticmethod
    def _content(f: dict[str, str], meta: dict[str, Any]) -> tuple[str, str | None]:
        """The text to register and the media id to fetch, per message type."""
        mtype = f["MsgType"]
        if mtype == "text":
            return f.get("Content", ""), None
        if mtype == "image":
            meta.update(media_id=f.get("MediaId"), pic_url=f.get("PicUrl"))
            return "[图片]", f.get("MediaId") or None
        if mtype == "voice":
            meta.update(media_id=f.get("MediaId"), format=f.get("Format"))
            recognition = f.get("Recognition")
            meta["recognition"] = bool(recognition)
            return (recognition or "[语音，未识别出文字]"), f.get("MediaId") or None
        if mtype == "location":
            meta["location"] = {"lat": f.get("Location_X"), "lon": f.get("Location_Y"), "scale": f.get("Scale"),
                                "label": f.get("Label")}
            return f"[位置] {f.get('Label') or ''} ({f.get('Location_X')}, {f.get('Location_Y')})".replace("  ", " "), None
        if mtype == "link":
            meta["url"] = f.get("Url")
            return "\n".join(filter(None, (f.get("Title"), f.get("Description"), f.get("Url")))), None
        if mtype in ("video", "shortvideo"):   # too large to fetch inside the 5 s; agents fetch by media id
            meta.update(media_id=f.get("MediaId"), thumb_media_id=f.get("ThumbMediaId"))
            return "[视频]", None
        return f"[{mtype}]", None

    async def _fetch(self, media_id: str, mtype: str, started: float) -> Attachment:
        budget = min(MEDIA_BUDGET, self.reply_budget - (asyncio.get_running_loop().time() - started) - 1.0)
        try:
            if budget <= 0:
                raise asyncio.TimeoutError
            return await asyncio.wait_for(self.fetch_media(media_id, mtype), budget)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # timeout, API error: keep the media id, an agent can fetch it for 3 days
            log.warning("wechat: media %s not fetched: %r", media_id, exc)
            ctype = "image/jpeg" if mtype == "image" else "audio/amr"
            return Attachment(name=media_id, content_type=ctype, size=0, sha256="", data=None,
                              note=f"WeChat media {media_id} not fetched ({type(exc).__name__}); "
                                   "fetch it with the media id within 3 days")

    async def fetch_media(self, media_id: str, mtype: str = "image") -> Attachment:
        """Download a customer's image or voice through the API as an attachment."""
        media = await self.api.get_media(media_id)
        ext = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "audio/amr": ".amr",
               "audio/speex": ".speex", "audio/mpeg": ".mp3"}.get(media.content_type, "")
        return Attachment.from_bytes(media.filename or f"{media_id}{ext}", media.content_type, media.data,
                                     limit=self.attachment_limit)

    def _left(self, started: float) -> float:
        return self.reply_budget - (asyncio.get_running_loop().time() - started)

    async def _hold_answer(self, msg: InboundMessage, started: float) -> dict | None:
        """Claim the acknowledgement of this message for the passive reply (None: we cannot answer it)."""
        if msg.kind is not MessageKind.MESSAGE:
            return None
        try:
            proposed = claims.passive_claim(self.clock() + self._left(started) + 1.0)
            held = await claims.claim(self.sessionmaker, claims.message_key(msg.external_id), proposed)
            return {**held, "_mine": held.get("token") == proposed["token"]}
        except asyncio.CancelledError:
            raise
        except Exception:   # no claim: the outbox acknowledges by the API, which is still once
            log.exception("wechat: could not claim the passive reply for %s", msg.external_id)
            return None

    async def _settle(self, msg: InboundMessage, held: dict | None, state: str) -> None:
        """Move our own claim on (a retry's view of another request's claim is left alone)."""
        if not held or not held.get("_mine") or held.get("state") != claims.PENDING:
            return
        try:
            await claims.settle(self.sessionmaker, claims.message_key(msg.external_id),
                                {**{k: v for k, v in held.items() if k != "_mine"}, "state": state})
        except asyncio.CancelledError:
            raise
        except Exception:   # left pending: send() takes over when `until` has passed
            log.exception("wechat: could not settle the passive claim for %s", msg.external_id)

    async def _passive_content(self, msg: InboundMessage, result: AcceptResult, held: dict | None,
                               started: float) -> str | None:
        """What to say in the HTTP answer, or None to answer "success" and leave it to the outbox."""
        if msg.kind is MessageKind.EVENT:
            if msg.meta.get("event") != "subscribe":
                return None
            won = await claims.claim(self.sessionmaker, claims.welcome_key(msg.external_id),
                                     {"by": claims.PASSIVE, "state": claims.DONE})
            return WELCOME_TEXT if won.get("by") == claims.PASSIVE else None
        if held is None or held.get("by") != claims.PASSIVE:
            return None                                   # the API has it (or no claim could be made)
        if held.get("state") == claims.DONE:              # WeChat's retry after our answer got lost
            return await self._ack_for(msg.external_id)
        if not held.get("_mine"):
            return None                                   # a retry while the first request still works on it
        number = None
        if result is AcceptResult.DUPLICATE:
            seen = await self.intake.outcome(CHANNEL, msg.external_id)
            number = seen[1] if seen else None
        left = self._left(started) - 0.3                  # keep time to read the text and settle
        if number is None and left > 0:
            number = await self.intake.process_now(CHANNEL, msg.external_id, timeout=left)
        text = await self._ack_for(msg.external_id) if number else None
        if text is None or self._left(started) <= 0.1:
            await self._settle(msg, held, claims.RELEASED)
            return None
        await self._settle(msg, held, claims.DONE)
        return text

    async def _ack_for(self, external_id: str) -> str | None:
        """The text of the pipeline's acknowledgement of this very message, if it queued one
        (none for a follow-up on a known complaint, or when the hourly limit held it back)."""
        async with self.sessionmaker() as session:
            rows = (await session.execute(
                select(OutboxItem.reply_to, OutboxItem.payload).join(InboxItem, InboxItem.complaint_id
                                                                     == OutboxItem.complaint_id)
                .where(InboxItem.channel == CHANNEL, InboxItem.external_id == external_id[:255],
                       OutboxItem.kind == "ack", OutboxItem.channel == CHANNEL))).all()
        for reply_to, payload in rows:
            if (reply_to or {}).get("msg") == external_id:
                return (payload or {}).get("text") or ack_text(payload["number"])
        return None

    # -- outbound ---------------------------------------------------------------------------------
    async def send(self, item: OutboundMessage) -> SendResult:
        openid = (item.reply_to or {}).get("openid")
        if not openid:
            raise PermanentSendError("no WeChat openid to answer")
        payload = item.payload or {}
        template = payload.get("template") or item.kind
        msg_id = (item.reply_to or {}).get("msg")
        if template == "ack" and msg_id:
            if not await claims.api_may_send(self.sessionmaker, claims.message_key(str(msg_id)), clock=self.clock):
                return SendResult(detail="passive reply")
        elif template == "welcome" and msg_id:
            held = await claims.claim(self.sessionmaker, claims.welcome_key(str(msg_id)), {"by": claims.API})
            if held.get("by") == claims.PASSIVE:
                return SendResult(detail="passive reply")
        text = payload.get("text")
        if not text:
            raise PermanentSendError("nothing to send: payload has no text")
        answer = await self.api.send_text(openid, str(text))
        msgid = answer.get("msgid")
        return SendResult(external_id=str(msgid) if msgid is not None else None, detail="customer-service message")

