"""Test helpers for the social-media channels.

`WechatStub`: a local HTTP server that follows WeChat's published API contract for the calls
kesu makes (/cgi-bin/token, /cgi-bin/message/custom/send, /cgi-bin/media/get), errcodes included.

`FakeIntake`: the daemon's IntakePort over the real `Inbox`; `process_now` registers a minimal
complaint for the accepted row (numbered like the product) so `outcome()` answers for real.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from aiohttp import web
from sqlalchemy import select, update

from connectors.base import AcceptResult, InboundMessage
from intake.inbox import Inbox
from models import Complaint, InboxItem, OutboxItem

TOKEN_LIFETIME = 7200


def _err(code: int, msg: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": msg})


@dataclass
class WechatStub:
    appid: str = "wx0123456789abcdef"
    secret: str = "s3cret"
    expires_in: int = TOKEN_LIFETIME
    tokens: dict[str, float] = field(default_factory=dict)         # token -> expiry (time.time)
    issued: list[str] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)                  # accepted customer-service messages
    calls: list[tuple[str, str]] = field(default_factory=list)     # (path, errcode) of every call
    window_closed: set[str] = field(default_factory=set)           # openids outside the 48-hour window
    over_limit: set[str] = field(default_factory=set)              # openids that hit the reply count limit
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_delay: float = 0.0
    busy: int = 0                                                   # answer errcode -1 this many times
    url: str = ""

    def __post_init__(self):
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/token", self.token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)
        self.app.router.add_get("/cgi-bin/media/get", self.media_get)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> "WechatStub":
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    def invalidate_tokens(self) -> None:
        """As if the token were reset elsewhere (another fetch, a secret change): next use → 40001."""
        self.tokens.clear()

    def expire_tokens(self) -> None:
        for t in self.tokens:
            self.tokens[t] = 0.0

    def _auth(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        if token not in self.tokens:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if self.tokens[token] < time.time():
            return _err(42001, "access_token expired")
        return None

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if q.get("appid") != self.appid:
            return _err(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return _err(40125, "invalid appsecret")
        tok = secrets.token_urlsafe(24)
        self.tokens[tok] = time.time() + self.expires_in
        self.issued.append(tok)
        return web.json_response({"access_token": tok, "expires_in": self.expires_in})

    async def custom_send(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            self.calls.append(("custom_send", json.loads(denied.body)["errcode"]))
            return denied
        try:
            body = json.loads(await request.read())
            touser, msgtype = body["touser"], body["msgtype"]
            content = body[msgtype]["content"] if msgtype == "text" else body[msgtype]
        except (ValueError, KeyError, TypeError):
            return _err(47001, "data format error")
        if self.busy:
            self.busy -= 1
            self.calls.append(("custom_send", -1))
            return _err(-1, "system error")
        if touser in self.window_closed:
            self.calls.append(("custom_send", 45015))
            return _err(45015, "response out of time limit or subscription is canceled")
        if touser in self.over_limit:
            self.calls.append(("custom_send", 45047))
            return _err(45047, "out of response count limit")
        self.sent.append({"touser": touser, "msgtype": msgtype, "content": content})
        self.calls.append(("custom_send", 0))
        return _err(0, "ok")

    async def media_get(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        if self.media_delay:
            await asyncio.sleep(self.media_delay)
        media_id = request.query.get("media_id", "")
        if media_id not in self.media:
            return _err(40007, "invalid media_id")
        data, ctype = self.media[media_id]
        ext = {"image/jpeg": "jpg", "audio/amr": "amr"}.get(ctype, "bin")
        return web.Response(body=data, content_type=ctype,
                            headers={"Content-Disposition": f'attachment; filename="{media_id}.{ext}"'})


class FakeIntake:
    """IntakePort for connector tests: the real inbox, a stand-in pipeline that only numbers."""

    _serial = itertools.count(1)

    def __init__(self, sessionmaker, *, ready: bool = True, delay: float = 0.0):
        self.inbox = Inbox(sessionmaker)
        self.sessionmaker = sessionmaker
        self.ready = ready           # False: the pipeline never finishes in time (process_now → None)
        self.delay = delay
        self.accepted: list[InboundMessage] = []
        self.process_calls: list[tuple[str, str, float]] = []
        self._lock = asyncio.Lock()

    async def accept(self, msg: InboundMessage) -> AcceptResult:
        result = await self.inbox.accept(msg)
        self.accepted.append(msg)
        return result

    async def outcome(self, channel: str, external_id: str):
        return await self.inbox.outcome(channel, external_id)

    async def process_now(self, channel: str, external_id: str, timeout: float = 3.0) -> str | None:
        self.process_calls.append((channel, external_id, timeout))
        if self.delay:
            await asyncio.sleep(min(self.delay, timeout))
        if not self.ready or self.delay > timeout:
            return None
        async with self._lock, self.sessionmaker() as session:
            item = await session.scalar(select(InboxItem).where(InboxItem.channel == channel,
                                                                InboxItem.external_id == external_id))
            if item is None:
                return None
            if item.complaint_id is not None:
                return await session.scalar(select(Complaint.number).where(Complaint.id == item.complaint_id))
            now = datetime.now(timezone.utc)
            number = f"TS{now:%Y%m%d}CS{next(self._serial):05d}"
            complaint = Complaint(number=number, channel=channel, category="other", urgency="P2",
                                  department_code="CS", text=item.message.get("text", ""),
                                  reply_to=item.message.get("reply_to"), received_at=item.received_at,
                                  response_due=now + timedelta(days=1), resolve_due=now + timedelta(days=7))
            session.add(complaint)
            await session.flush()
            if item.message.get("reply_to"):   # like the pipeline's acknowledge step
                session.add(OutboxItem(channel=channel, kind="ack", complaint_id=complaint.id,
                                       reply_to=item.message["reply_to"],
                                       payload={"template": "ack", "number": number, "automatic": True,
                                                "text": f"您好，您的投诉已受理，编号 {number}。"},
                                       dedupe_key=f"ack:{complaint.id}", status="pending"))
            await session.execute(update(InboxItem).where(InboxItem.id == item.id)
                                  .values(status="done", complaint_id=complaint.id, finished_at=now))
            await session.commit()
            return number


# -- request builders and wiring shared by the channel tests -------------------------------------------

def plain_query(token: str, timestamp: int, nonce: str = "123456") -> dict[str, str]:
    from connectors.wechat.crypto import plain_signature
    ts = str(timestamp)
    return {"timestamp": ts, "nonce": nonce, "signature": plain_signature(token, ts, nonce)}


def safe_request(crypto, xml: bytes, timestamp: int, nonce: str = "654321") -> tuple[dict[str, str], bytes]:
    """(query, body) of a safe-mode push carrying `xml`, as WeChat sends it."""
    from connectors.wechat.crypto import msg_signature, plain_signature
    ts = str(timestamp)
    enc = crypto.encrypt(xml)
    body = (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>").encode()
    return ({"timestamp": ts, "nonce": nonce, "signature": plain_signature(crypto.token, ts, nonce),
             "encrypt_type": "aes", "msg_signature": msg_signature(crypto.token, ts, nonce, enc),
             "openid": "o"}, body)


def text_xml(openid: str = "oCustomer1", content: str = "快递三天没到，客服不回", msg_id: str = "6100000000000000001",
             created: int | None = None, to: str = "gh_test") -> bytes:
    created = created or int(time.time())
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>").encode()


async def sqlite_sessionmaker(url: str):
    """Engine + sessionmaker with the default departments; caller disposes the engine."""
    from models import make_engine, make_sessionmaker
    from workflow.organisation import ensure_defaults
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as session:
        await ensure_defaults(session)
        await session.commit()
    return engine, sm


async def count_inbox(sessionmaker, channel: str | None = None) -> int:
    from sqlalchemy import func
    async with sessionmaker() as session:
        stmt = select(func.count()).select_from(InboxItem)
        if channel is not None:
            stmt = stmt.where(InboxItem.channel == channel)
        return await session.scalar(stmt)


_TEMPLATE: dict[str, str] = {}


def migrated_sqlite_url(tmp_path) -> str:
    """A migrated SQLite database for one test, copied from one migrated once per run (migrating
    takes about a second; these tests make hundreds of databases)."""
    import shutil
    import tempfile
    from models.migrate import upgrade
    if "path" not in _TEMPLATE:
        path = f"{tempfile.mkdtemp(prefix='kesu-template-')}/kesu.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        _TEMPLATE["path"] = path
    target = tmp_path / "kesu.db"
    shutil.copyfile(_TEMPLATE["path"], target)
    return f"sqlite+aiosqlite:///{target}"


# -- fuzzing ---------------------------------------------------------------------------------------------

_JUNK = [b"", b"null", b"[]", b"{}", b'{"a":', b"\xff\xfe\x00", "投诉".encode(), b"\x00" * 8, b"<xml>", b"]]>",
         b"<![CDATA[", b'"\\ud800"', b"1e999999", b"-0", b"9" * 400, b"{" * 300, b"[" * 5000, b"&amp;", b"<!DOCTYPE x>"]


def mutate(rng, base: bytes) -> bytes:
    """One random or mutated body: byte flips, cuts, splices, junk, structure-aware junk."""
    op = rng.randrange(9)
    if op == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if op == 1:
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == 2:
        return base[:rng.randrange(len(base) + 1)]
    if op == 3:
        at = rng.randrange(len(base) + 1)
        return base[:at] + rng.choice(_JUNK) + base[at:]
    if op == 4:
        a, b = sorted(rng.randrange(len(base) + 1) for _ in range(2))
        return base[:a] + base[a:b] * rng.randint(2, 4) + base[b:]
    if op == 5:
        return rng.choice(_JUNK) * rng.randint(1, 3)
    if op == 6:   # swap two slices
        a, b, c = sorted(rng.randrange(len(base) + 1) for _ in range(3))
        return base[:a] + base[b:c] + base[a:b] + base[c:]
    if op == 7:   # replace a quoted or tagged value with junk
        import re
        spans = [m.span(1) for m in re.finditer(rb'"([^"]*)"|>([^<]*)<', base) if m.group(1) is not None]
        if spans:
            a, b = rng.choice(spans)
            return base[:a] + rng.choice(_JUNK + [str(rng.randint(-10**20, 10**20)).encode()]) + base[b:]
    return base


def mutate_json(rng, obj):
    """Structure-aware: replace a random value (at any depth) with a value of another type."""
    import copy
    obj = copy.deepcopy(obj)
    choices = [None, True, 0, -1, 10**40, 1.5, "", "x" * rng.randint(1, 300), [], {}, [1, "a"], {"id": None}]
    node = obj
    for _ in range(rng.randint(1, 3)):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.5 or not isinstance(node[key], (dict, list)):
                if rng.random() < 0.2:
                    del node[key]
                else:
                    node[key] = rng.choice(choices)
                return obj
            node = node[key]
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            node[i] = rng.choice(choices)
            return obj
    return obj
