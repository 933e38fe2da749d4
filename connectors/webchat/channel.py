"""The web chat channel: widget assets, the customer websocket, the agents' chat API, and `send()`.

Per customer message: store it (so a reload shows it), run the dialogue, store and push the bot's
answers. Every conversation lives in the database; this process only keeps the sockets that are
connected to it, a lock per session (one message of a session at a time here) and the rate
limiter's recent timestamps.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
import time
import weakref
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import WSMsgType, web
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import (Attachment, InboundMessage, IntakePort, OutboundMessage, PermanentSendError, SendResult,
                             Sender, TransientSendError)
from console.keys import AGENT   # the request key under which the console's auth middleware puts the agent
from models import (ChatMessage, ChatSession, Complaint, CustomerIdentity, InboxItem, read_session, utcnow,
                    write_gate)
from models.crypto import keyring, mask
from workflow.messages import local_time
from workflow.sla import RESPONSE_PROMISE
from workflow.surveys import SurveyError, record_response

from . import store
from .dialogue import Dialogue, Photo, Registered, Say, new_state, welcome
from .extract import valid_email
from .hub import Hub, Subscriber
from .store import Line

log = logging.getLogger(__name__)

CHANNEL = "webchat"
MAX_TEXT = 2000                       # characters per customer message
PHOTO_LIMIT = 2 * 1024 * 1024         # bytes per photo
MAX_FRAME = 3 * 1024 * 1024           # a base64 photo and its JSON envelope
REGISTER_TIMEOUT = 5.0                # seconds the bot waits for a complaint number before promising it
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
STATIC = Path(__file__).parent / "static"

ERRORS = {
    "invalid_frame": "无法识别的消息格式。",
    "binary_not_supported": "暂不支持这种消息，请发送文字或图片。",
    "no_session": "会话尚未建立，请刷新页面后重试。",
    "unknown_session": "会话已失效，将为您开始新的对话。",
    "empty": "消息不能为空。",
    "too_long": f"消息太长了（最多{MAX_TEXT}字），请分几次发送。",
    "rate_limited": "您发送得太快了，请稍等几秒再试。",
    "too_many_sessions": "当前网络发起的会话过多，请稍后再试。",
    "too_many_connections": "当前网络打开的聊天窗口过多，请关闭一些后重试。",
    "invalid_photo": "图片无法读取，请发送 JPG、PNG、GIF 或 WebP 格式的图片。",
    "photo_too_large": f"图片太大了（最大{PHOTO_LIMIT // 1024 // 1024}MB），请压缩后再发送。",
    "server_error": "抱歉，系统出了点问题，请稍后再试。",
}
SORRY = "抱歉，系统繁忙，刚才的消息没有处理成功，请稍后再发一次。"


@dataclass
class Limits:
    """Abuse limits; the defaults suit a public site (tests and benchmarks raise them)."""
    messages: int = 10                # per session ...
    per_seconds: float = 10.0         # ... in this many seconds
    sessions_per_ip_hour: int = 30    # new conversations per IP address per hour (all processes)
    sockets_per_ip: int = 30          # open sockets per IP address (this process)


class FrameError(Exception):
    def __init__(self, code: str, cid: str | None = None):
        super().__init__(code)
        self.code, self.cid = code, cid


def error_frame(code: str, cid: str | None = None) -> dict[str, Any]:
    out = {"type": "error", "code": code, "text": ERRORS[code]}
    if cid:
        out["cid"] = cid
    return out


class ApiProblem(Exception):
    """An API request we refuse: answered as {"error": ...} with its status."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


def _api(handler):
    async def wrapped(self, request: web.Request) -> web.Response:
        try:
            return await handler(self, request)
        except ApiProblem as exc:
            return _json(exc.body, status=exc.status)
    wrapped.__name__, wrapped.__doc__ = handler.__name__, handler.__doc__
    return wrapped


class Connection:
    """One open socket: which conversation it carries, once the hello has been answered."""

    def __init__(self, ws: web.WebSocketResponse, ip_hash: str):
        self.ws = ws
        self.ip_hash = ip_hash
        self.chat_id: int | None = None
        self.public_id: str | None = None
        self.sub: Subscriber | None = None


class WebchatChannel:
    name = CHANNEL

    def __init__(self, intake: IntakePort, sessionmaker: async_sessionmaker[AsyncSession], *,
                 limits: Limits | None = None, photo_limit: int = PHOTO_LIMIT,
                 register_timeout: float = REGISTER_TIMEOUT, clock: Callable[[], float] = time.monotonic):
        self.intake = intake
        self.sessionmaker = sessionmaker
        self.limits = limits or Limits()
        self.photo_limit = photo_limit
        self.register_timeout = register_timeout
        self.clock = clock
        self.hub = Hub()
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        self._ip_sockets: Counter[str] = Counter()
        self._assets = _load_assets()
        # SQLite has one writer: queueing our transactions here is far cheaper than SQLite's
        # busy-wait sleeps between competing connections. PostgreSQL needs no gate.
        self.gate = write_gate(sessionmaker)   # shared with the inbox, worker and dispatcher

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """A session whose transactions run behind the write gate."""
        async with self.gate, self.sessionmaker() as session:
            yield session

    def _read(self) -> AsyncSession:
        """A session that only reads: no gate, and on SQLite it runs beside the writer."""
        return read_session(self.sessionmaker)

    # -- wiring -------------------------------------------------------------------------------------
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.demo_page)
        app.router.add_get("/widget.js", self.widget_js)
        app.router.add_get("/chat/widget.css", self.widget_css)
        app.router.add_get("/chat/ws", self.handle_ws)
        app.router.add_get("/api/chats", self.api_list)
        app.router.add_get("/api/chats/{chat}/messages", self.api_messages)
        app.router.add_post("/api/chats/{chat}/messages", self.api_reply)
        app.router.add_post("/api/chats/{chat}/release", self.api_release)
        # Open sockets would hold a graceful shutdown for its whole timeout: close them first
        # (1001 "going away"; the widget reconnects to whichever process is up).
        app.on_shutdown.append(lambda _app: self.close())

    def background(self) -> list[Awaitable[None]]:
        return [self.hub.poll_forever(self._read)]

    async def close(self) -> None:
        for subs in list(self.hub.subs.values()):
            for sub in list(subs):
                await sub.ws.close(code=1001, message=b"server shutdown")

    def _lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    # -- assets ---------------------------------------------------------------------------------------
    async def demo_page(self, request: web.Request) -> web.Response:
        return web.Response(text=self._assets["demo.html"], content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    async def widget_js(self, request: web.Request) -> web.Response:
        return web.Response(text=self._assets["widget.js"], content_type="application/javascript", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
                                     "Access-Control-Allow-Origin": "*"})

    async def widget_css(self, request: web.Request) -> web.Response:
        return web.Response(text=self._assets["widget.css"], content_type="text/css", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    # -- the customer's socket --------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        conn = Connection(ws, keyring().blind_index("ip", request.remote or "unknown"))
        if self._ip_sockets[conn.ip_hash] >= self.limits.sockets_per_ip:
            await ws.send_json(error_frame("too_many_connections"))
            await ws.close(code=1008, message=b"too many connections")
            return ws
        self._ip_sockets[conn.ip_hash] += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_json(error_frame("binary_not_supported"))
                elif msg.type == WSMsgType.ERROR:
                    log.info("webchat: socket error %s", ws.exception())
                    break
        except (ConnectionError, RuntimeError):
            pass   # the browser went away while we answered: it resumes on reconnect
        finally:
            if conn.sub is not None:
                self.hub.leave(conn.sub)
            self._ip_sockets[conn.ip_hash] -= 1
            if self._ip_sockets[conn.ip_hash] <= 0:
                del self._ip_sockets[conn.ip_hash]
        return ws

    async def _on_frame(self, conn: Connection, data: str) -> None:
        cid = None
        try:
            try:
                obj = json.loads(data)
            except ValueError:
                raise FrameError("invalid_frame") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                raise FrameError("invalid_frame")
            cid = obj.get("cid") if isinstance(obj.get("cid"), str) and len(obj["cid"]) <= 64 else None
            kind = obj["type"]
            if kind == "ping":
                await conn.ws.send_json({"type": "pong"})
            elif kind == "hello":
                await self._hello(conn, obj)
            elif conn.chat_id is None:
                raise FrameError("no_session", cid)
            elif kind == "message":
                await self._message(conn, obj)
            elif kind == "photo":
                await self._photo(conn, obj)
            else:
                raise FrameError("invalid_frame", cid)
        except FrameError as exc:
            await conn.ws.send_json(error_frame(exc.code, exc.cid))
        except asyncio.CancelledError:
            raise
        except Exception:
            if conn.ws.closed:
                return
            log.exception("webchat: a frame failed")
            await conn.ws.send_json(error_frame("server_error", cid))

    async def _hello(self, conn: Connection, obj: dict[str, Any]) -> None:
        token = obj.get("token")
        if conn.chat_id is not None or (token is not None and (not isinstance(token, str) or len(token) > 128)):
            raise FrameError("invalid_frame")
        new_token = None
        async with self._tx() as session:
            if token:
                row = await store.by_token(session, token)
                if row is None:
                    raise FrameError("unknown_session")
            else:
                since = utcnow() - timedelta(hours=1)
                if await store.sessions_from_ip(session, conn.ip_hash, since) >= self.limits.sessions_per_ip_hour:
                    raise FrameError("too_many_sessions")
                row, new_token = await store.create_session(session, new_state(), conn.ip_hash)
                await store.append(session, row.id, [_bot_line(s) for s in welcome()])
            lines = await store.history(session, row.id)
            await session.commit()
        conn.chat_id, conn.public_id = row.id, row.public_id
        conn.sub = Subscriber(conn.ws, row.id)
        self.hub.join(conn.sub, seen=[m.id for m in lines])
        out = {"type": "welcome", "session": row.public_id, "human": row.needs_human,
               "history": [store.frame(m) for m in lines]}
        if new_token:
            out["token"] = new_token
        await conn.ws.send_json(out)

    def _rate_limited(self, chat_id: int) -> bool:
        now, window = self.clock(), self._recent[chat_id]
        while window and window[0] <= now - self.limits.per_seconds:
            window.popleft()
        if len(window) >= self.limits.messages:
            return True
        window.append(now)
        return False

    async def _message(self, conn: Connection, obj: dict[str, Any]) -> None:
        text, cid = obj.get("text"), obj.get("cid")
        if not isinstance(text, str) or (cid is not None and (not isinstance(cid, str) or len(cid) > 64)):
            raise FrameError("invalid_frame", cid if isinstance(cid, str) else None)
        if len(text) > MAX_TEXT:
            raise FrameError("too_long", cid)
        if not text.strip():
            raise FrameError("empty", cid)
        if self._rate_limited(conn.chat_id):
            raise FrameError("rate_limited", cid)
        await self._converse(conn, text.strip(), cid, lambda d: d.hear(text))

    async def _photo(self, conn: Connection, obj: dict[str, Any]) -> None:
        cid, name, mime, data = obj.get("cid"), obj.get("name"), obj.get("mime"), obj.get("data")
        if not isinstance(data, str) or mime not in IMAGE_TYPES:
            raise FrameError("invalid_photo", cid)
        name = (name if isinstance(name, str) and name.strip() else "photo")[:100]
        if len(data) > (self.photo_limit * 4) // 3 + 8:
            raise FrameError("photo_too_large", cid)
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("invalid_photo", cid) from None
        if len(raw) > self.photo_limit:
            raise FrameError("photo_too_large", cid)
        if self._rate_limited(conn.chat_id):
            raise FrameError("rate_limited", cid)
        photo = Photo(name, mime, raw)
        await self._converse(conn, f"[图片] {name}", cid, lambda d: d.photo(photo))

    async def _converse(self, conn: Connection, text: str, cid: str | None,
                        act: Callable[[Dialogue], Awaitable[list[Say]]]) -> None:
        """One customer turn. Usually one transaction: store the message, run the dialogue, store the
        answers and the new state, commit. When the dialogue has to reach the rest of kesu (register,
        verify a contact...), the customer's message is committed first, so no lock is held meanwhile."""
        chat_id = conn.chat_id
        async with self._lock(chat_id):
            turn = _Turn(self, chat_id)
            try:
                await turn.begin()
                if cid and (dup := await store.by_client_id(turn.session, chat_id, cid)) is not None:
                    await turn.end()
                    conn.sub.delivered.discard(dup.id)         # a resend after a reconnect: stored once,
                    await self.hub.publish(chat_id, [dup])     # echoed again so the widget marks it sent
                    await conn.sub.send({"type": "typing", "on": False, "cid": cid})
                    return
                row = await store.lock(turn.session, chat_id)
                state, public_id = row.state, row.public_id
                inbound = turn.add([Line("in", "customer", text, cid)], row.next_seq)[0]
                backend = ChatBackend(self, public_id, inbound.seq, state, before_io=turn.commit_inbound)
                dialogue = Dialogue(backend, copy.deepcopy(state))
                backend.state = dialogue.state          # the contact the customer proves during this turn counts
                try:
                    said = await act(dialogue)
                    state = dialogue.state
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webchat: the dialogue failed for session %s", public_id)
                    said = [Say(SORRY)]
                if turn.committed:
                    await turn.begin()
                    next_seq = (await store.lock(turn.session, chat_id)).next_seq
                else:
                    next_seq = inbound.seq
                out = turn.add([_bot_line(s) for s in said], next_seq)
                await store.save_state(turn.session, chat_id, state, state.get("mode") == "human",
                                       next_seq=next_seq + len(out))
                await turn.end()
            except IntegrityError:   # the same client id from another tab at the same moment
                await turn.end(commit=False)
                return
            finally:
                await turn.close()
            await self.hub.publish(chat_id, [inbound, *out])
            # "done" for this message: the widget stops its typing dots, clients know all replies are in
            await self.hub.send_all(chat_id, {"type": "typing", "on": False, "cid": cid})

    # -- outbox: acknowledgements, progress, agents' replies from the console ----------------------------
    async def send(self, item: OutboundMessage) -> SendResult:
        public_id = (item.reply_to or {}).get("session")
        text = (item.payload or {}).get("text")
        if not isinstance(public_id, str) or not isinstance(text, str) or not text.strip():
            raise PermanentSendError("a web chat item needs reply_to.session and payload.text")
        async with self._read() as session:
            row = await store.by_public_id(session, public_id)
            await session.commit()
        if row is None:
            raise PermanentSendError(f"unknown chat session {mask(public_id)}")
        number = item.payload.get("number")
        async with self._lock(row.id):
            async with self._tx() as session:
                row = await session.get(ChatSession, row.id, populate_existing=True)
                state = copy.deepcopy(row.state)
                if item.kind == "ack" and number:
                    if number in state.get("told", ()):
                        await session.commit()
                        return SendResult(detail="already told in chat")
                    if not await _bot_answered(session, row.id, number):
                        raise TransientSendError("the chat is still registering this complaint")
                    state.setdefault("told", []).append(number)
                    if number not in state.setdefault("numbers", []):
                        state["numbers"].append(number)
                if item.kind == "survey" and number:
                    if number not in state.setdefault("numbers", []):
                        state["numbers"].append(number)
                    state.update(mode="rate", target=number, misses=0)
                author = item.payload.get("author")
                author = author if isinstance(author, str) and author.startswith("agent:") else "bot"
                options = ("1", "2", "3", "4", "5", "跳过") if item.kind == "survey" else ()
                (line,) = await store.append(session, row.id, [Line("out", author, text.strip(), None, options)])
                await store.save_state(session, row.id, state, row.needs_human)
                await session.commit()
        await self.hub.publish(row.id, [line])
        return SendResult(external_id=f"{public_id}:{line.seq}")

    # -- the agents' chat API (the console's middleware has checked the bearer token) ----------------------
    async def api_list(self, request: web.Request) -> web.Response:
        waiting_only = request.query.get("waiting", "1") not in ("0", "false", "no")
        async with self._read() as session:
            stmt = select(ChatSession).order_by(ChatSession.last_seen_at.desc()).limit(100)
            if waiting_only:
                stmt = stmt.where(ChatSession.needs_human.is_(True))
            rows = (await session.scalars(stmt)).all()
            chats = []
            for row in rows:
                last = await session.scalar(select(ChatMessage).where(ChatMessage.session_id == row.id)
                                            .order_by(ChatMessage.seq.desc()).limit(1))
                chats.append({"id": row.public_id, "needs_human": row.needs_human,
                              "created_at": row.created_at.isoformat(), "last_seen_at": row.last_seen_at.isoformat(),
                              "complaints": list(row.state.get("numbers", [])),
                              "last_message": store.frame(last) if last else None,
                              "online": self.hub.connected(row.id) > 0})
            await session.commit()
        return _json({"chats": chats})

    async def _chat_or_404(self, session: AsyncSession, request: web.Request) -> ChatSession:
        row = await store.by_public_id(session, request.match_info["chat"][:32])
        if row is None:
            raise ApiProblem(404, "no such chat")
        return row

    @_api
    async def api_messages(self, request: web.Request) -> web.Response:
        async with self._read() as session:
            row = await self._chat_or_404(session, request)
            lines = await store.history(session, row.id)
            await session.commit()
        return _json({"id": row.public_id, "needs_human": row.needs_human,
                      "messages": [store.frame(m) | {"author": m.author} for m in lines]})

    @_api
    async def api_reply(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiProblem(400, "the body is not valid JSON") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ApiProblem(400, "text is required", field="text")
        if len(text) > MAX_TEXT:
            raise ApiProblem(400, f"text is longer than {MAX_TEXT} characters", field="text")
        agent = request[AGENT]
        async with self._tx() as session:
            row = await self._chat_or_404(session, request)
            await session.commit()
        async with self._lock(row.id):
            async with self._tx() as session:
                (line,) = await store.append(session, row.id, [Line("out", f"agent:{agent.id}", text.strip())])
                await session.commit()
        await self.hub.publish(row.id, [line])
        return _json({"message": store.frame(line)}, status=201)

    @_api
    async def api_release(self, request: web.Request) -> web.Response:
        """The agent is done: the bot takes the conversation back and asks for a rating."""
        async with self._tx() as session:
            row = await self._chat_or_404(session, request)
            await session.commit()
        async with self._lock(row.id):
            async with self._tx() as session:
                row = await session.get(ChatSession, row.id, populate_existing=True)
                dialogue = Dialogue(ChatBackend(self, row.public_id, 0, row.state), copy.deepcopy(row.state))
                said = dialogue.agent_released()
                out = await store.append(session, row.id, [_bot_line(s) for s in said])
                await store.save_state(session, row.id, dialogue.state, False)
                await session.commit()
        await self.hub.publish(row.id, out)
        return _json({"id": row.public_id, "needs_human": False})


class _Turn:
    """The transaction(s) of one customer turn, behind the channel's write gate."""

    def __init__(self, channel: "WebchatChannel", chat_id: int):
        self.channel, self.chat_id = channel, chat_id
        self.session = channel.sessionmaker()
        self.held = False
        self.committed = False
        self.inbound: list[ChatMessage] = []

    async def begin(self) -> None:
        await self.channel.gate.acquire()
        self.held = True

    def add(self, lines: list[Line], after_seq: int) -> list[ChatMessage]:
        rows = store.rows(self.chat_id, lines, after_seq)
        self.session.add_all(rows)
        if not self.inbound:
            self.inbound = rows
        return rows

    async def commit_inbound(self) -> None:
        """Before the dialogue waits on the rest of kesu: commit the customer's message, show it."""
        if self.committed:
            return
        await store.save_seq(self.session, self.chat_id, self.inbound[-1].seq)
        await self.end()
        self.committed = True
        await self.channel.hub.publish(self.chat_id, self.inbound)
        await self.channel.hub.send_all(self.chat_id, {"type": "typing", "on": True})

    async def end(self, commit: bool = True) -> None:
        try:
            if commit:
                await self.session.commit()
            else:
                await self.session.rollback()
        finally:
            self._release()

    def _release(self) -> None:
        if self.held:
            self.held = False
            self.channel.gate.release()

    async def close(self) -> None:
        self._release()
        await self.session.close()


class ChatBackend:
    """What the dialogue of one conversation may do to kesu, on behalf of the customer message `seq`."""

    def __init__(self, channel: WebchatChannel, public_id: str, seq: int, state: dict[str, Any],
                 before_io: Callable[[], Awaitable[None]] | None = None):
        self.channel = channel
        self.public_id = public_id
        self.seq = seq
        self.state = state
        self._before_io = before_io

    async def _io(self) -> None:
        if self._before_io is not None:
            await self._before_io()

    def _sender(self, contact: str | None) -> Sender:
        email = contact if contact and valid_email(contact) else None
        phone = contact if contact and not email else None
        return Sender(handle=self.public_id, email=email, phone=phone)

    async def _submit(self, msg: InboundMessage) -> str | None:
        await self.channel.intake.accept(msg)
        return await self.channel.intake.process_now(CHANNEL, msg.external_id, timeout=self.channel.register_timeout)

    async def register(self, slots: dict[str, Any]) -> Registered | None:
        await self._io()
        details = [("产品/服务", slots.get("product")), ("订单号", slots.get("order_no")),
                   ("发生时间", slots.get("when")), ("诉求", slots.get("wants"))]
        text = "\n".join([slots.get("description") or ""] + [f"{k}：{v}" for k, v in details if v])
        msg = InboundMessage(
            channel=CHANNEL, external_id=f"{self.public_id}:{self.seq}", sender=self._sender(slots.get("contact")),
            text=text, received_at=datetime.now(timezone.utc),
            raw=json.dumps(slots, ensure_ascii=False).encode("utf-8"), reply_to={"session": self.public_id},
            meta={k: slots.get(k) or None for k in ("product", "order_no", "when", "wants")})
        number = await self._submit(msg)
        if number is None:
            return None
        async with self.channel._read() as session:
            c = await session.scalar(select(Complaint).where(Complaint.number == number))
            await session.commit()
        return Registered(number, c.urgency, RESPONSE_PROMISE.get(c.urgency, "24小时"), local_time(c.response_due))

    async def verify(self, number: str, contact: str) -> bool:
        await self._io()
        kind = "email" if "@" in contact else "phone"
        digest = keyring().blind_index(kind, contact)
        async with self.channel._read() as session:
            found = await session.scalar(select(exists().where(
                Complaint.number == number, CustomerIdentity.customer_id == Complaint.customer_id,
                CustomerIdentity.kind == kind, CustomerIdentity.value_hash == digest)))
            await session.commit()
        return bool(found)

    async def status(self, number: str) -> tuple[str, str | None] | None:
        await self._io()
        async with self.channel._read() as session:
            c = await session.scalar(select(Complaint).where(Complaint.number == number))
            await session.commit()
        return None if c is None else (c.status, local_time(c.response_due))

    async def add_info(self, number: str, text: str, photo: Photo | None) -> bool:
        await self._io()
        attachments = ()
        if photo is not None:
            attachments = (Attachment.from_bytes(photo.name, photo.content_type, photo.data,
                                                 limit=self.channel.photo_limit),)
        msg = InboundMessage(
            channel=CHANNEL, external_id=f"{self.public_id}:{self.seq}", sender=self._sender(self.state.get("contact")),
            text=text or "（客户在网页聊天中补充了照片）", received_at=datetime.now(timezone.utc),
            attachments=attachments, thread_refs=(number,), reply_to={"session": self.public_id})
        return await self._submit(msg) == number

    async def rate(self, number: str, score: int) -> bool:
        await self._io()
        # One overall 1-5 score for the handling, recorded for each survey dimension.
        async with self.channel._tx() as session:
            complaint_id = await session.scalar(select(Complaint.id).where(Complaint.number == number))
            if complaint_id is None:
                return False
            try:
                await record_response(session, complaint_id, channel=CHANNEL, efficiency=score, attitude=score,
                                      solution=score, comment="网页聊天评分")
            except SurveyError:
                return False
            await session.commit()
        return True

    async def request_human(self) -> None:
        log.info("webchat: session %s asks for a human", self.public_id)   # saved with the state


async def _bot_answered(session: AsyncSession, chat_id: int, number: str) -> bool:
    """Has the bot already answered the message that registered `number` here? If it has not, it is
    still waiting for the number and will tell it itself."""
    external_id = await session.scalar(
        select(InboxItem.external_id).join(Complaint, Complaint.id == InboxItem.complaint_id)
        .where(Complaint.number == number, InboxItem.channel == CHANNEL).order_by(InboxItem.id).limit(1))
    chat = await session.get(ChatSession, chat_id)
    prefix, _, seq = (external_id or "").partition(":")
    if prefix != chat.public_id or not seq.isdigit():
        return True
    return bool(await session.scalar(select(exists().where(
        ChatMessage.session_id == chat_id, ChatMessage.direction == "out", ChatMessage.seq > int(seq)))))


def _bot_line(say: Say) -> Line:
    return Line("out", "bot", say.text, None, say.options)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def _load_assets() -> dict[str, str]:
    assets = {name: (STATIC / name).read_text(encoding="utf-8") for name in ("widget.js", "widget.css", "demo.html")}
    # One request for the embedding page: the stylesheet travels inside the script (into the shadow root).
    assets["widget.js"] = assets["widget.js"].replace('"__KESU_CSS__"', json.dumps(assets["widget.css"]))
    return assets
