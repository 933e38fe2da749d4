"""Signed webhooks (kesu scheme, Weibo, Douyin) in one process against the real inbox (SQLite)."""
from __future__ import annotations

import base64
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.base import MessageKind, OutboundMessage, PermanentSendError, TransientSendError, WindowClosedError
from connectors.webhook import WebhookChannel, from_settings, sign, signed_headers, verify
from connectors.webhook import douyin, weibo
from connectors.webhook.signing import SignatureError
from intake.settings import Settings, WebhookSource
from tests.wechat_stub import FakeIntake, count_inbox, migrated_sqlite_url, sqlite_sessionmaker

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "webhooks"
SECRET = "shop-secret-0123456789"


@pytest.fixture
def db(tmp_path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest_asyncio.fixture
async def sm(db):
    engine, sm = await sqlite_sessionmaker(db)
    yield sm
    await engine.dispose()


_OPEN: list[WebhookChannel] = []


@pytest_asyncio.fixture(autouse=True)
async def close_channels():
    yield
    while _OPEN:
        await _OPEN.pop().close()


def make_channel(intake, *, callback=None, weibo_callback=None, douyin_callback=None, **kw) -> WebhookChannel:
    ch = WebhookChannel({"shop": WebhookSource("shop", SECRET, callback),
                         "weibo": WebhookSource("weibo", "weibo-app-secret", weibo_callback),
                         "douyin": WebhookSource("douyin", "douyin-client-secret", douyin_callback)},
                        intake=intake, attachment_limit=1024, **kw)
    _OPEN.append(ch)
    return ch


@asynccontextmanager
async def served(channel):
    app = web.Application()
    channel.setup_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


def event(event_id="evt-1", text="收到的商品包装破损，要求换货", **extra) -> dict:
    return {"event_id": event_id, "sender": {"id": "u-42", "name": "王芳", "phone": "13812345678"},
            "text": text, "created_at": "2026-11-23T10:15:00+08:00", **extra}


def signed(body: dict | bytes, secret=SECRET, now=None) -> tuple[bytes, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return raw, signed_headers(secret, raw, now)


# -- the signature ------------------------------------------------------------------------------------

def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac
    body = b'{"event_id":"1"}'
    expected = "sha256=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", body) == expected
    verify("k", "1700000000", expected, body, now=1700000100)
    for ts, sig, now in (("1700000000", expected, 1700000301), ("1700000001", expected, 1700000000),
                         ("1700000000", expected.upper(), 1700000000), ("1700000000", expected[7:], 1700000000),
                         (None, expected, 1700000000), ("1700000000", None, 1700000000)):
        with pytest.raises(SignatureError):
            verify("k", ts, sig, body, now=now)


# -- generic source -----------------------------------------------------------------------------------

async def test_signed_event_is_stored_and_answered_with_its_complaint_number(sm):
    intake = FakeIntake(sm)
    async with served(make_channel(intake)) as client:
        body, headers = signed(event())
        resp = await client.post("/webhooks/shop", data=body, headers=headers)
        assert resp.status == 200
        answer = await resp.json()
    [msg] = intake.accepted
    assert answer == {"status": "accepted", "event_id": "evt-1",
                      "complaint": (await intake.outcome("webhook:shop", "evt-1"))[1]}
    assert answer["complaint"]
    assert (msg.channel, msg.external_id, msg.sender.handle, msg.sender.name, msg.sender.phone) == (
        "webhook:shop", "evt-1", "u-42", "王芳", "13812345678")
    assert msg.raw == body and msg.reply_to == {"source": "shop", "sender_id": "u-42", "event_id": "evt-1"}
    assert msg.received_at.isoformat() == "2026-11-23T02:15:00+00:00"


async def test_same_event_three_times_is_one_complaint_with_the_same_number(sm):
    intake = FakeIntake(sm)
    answers = []
    async with served(make_channel(intake)) as client:
        for _ in range(3):
            body, headers = signed(event())
            resp = await client.post("/webhooks/shop", data=body, headers=headers)
            assert resp.status == 200
            answers.append(await resp.json())
    assert [a["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    assert len({a["complaint"] for a in answers}) == 1 and answers[0]["complaint"]
    assert await count_inbox(sm) == 1


async def test_repeat_before_registration_still_gets_the_first_number(sm):
    intake = FakeIntake(sm, ready=False)
    async with served(make_channel(intake)) as client:
        body, headers = signed(event())
        first = await (await client.post("/webhooks/shop", data=body, headers=headers)).json()
        assert first["complaint"] is None       # the pipeline was not done in time
        intake.ready = True
        number = await intake.process_now("webhook:shop", "evt-1")
        again = await (await client.post("/webhooks/shop", data=body, headers=headers)).json()
        assert again == {"status": "duplicate", "event_id": "evt-1", "complaint": number}


@pytest.mark.parametrize("case", ["no headers", "no signature", "no timestamp", "wrong secret", "body changed",
                                  "old timestamp", "future timestamp", "bad timestamp", "unknown source",
                                  "signature of another source", "replayed later"])
async def test_forged_or_replayed_requests_are_401_with_json_and_store_nothing(sm, case):
    intake = FakeIntake(sm)
    clock = [time.time()]
    ch = make_channel(intake, clock=lambda: clock[0])
    body, headers = signed(event(), now=clock[0])
    path = "/webhooks/shop"
    if case == "no headers":
        headers = {}
    elif case == "no signature":
        headers.pop("X-Kesu-Signature")
    elif case == "no timestamp":
        headers.pop("X-Kesu-Timestamp")
    elif case == "wrong secret":
        body, headers = signed(event(), secret="guess")
    elif case == "body changed":
        body = body.replace("换货".encode(), "退款".encode())
    elif case == "old timestamp":
        body, headers = signed(event(), now=clock[0] - 301)
    elif case == "future timestamp":
        body, headers = signed(event(), now=clock[0] + 301)
    elif case == "bad timestamp":
        headers["X-Kesu-Timestamp"] = "yesterday"
    elif case == "unknown source":
        path = "/webhooks/nobody"
    elif case == "signature of another source":
        body, headers = signed(event(), secret="douyin-client-secret")
    elif case == "replayed later":
        clock[0] += 600
    async with served(ch) as client:
        resp = await client.post(path, data=body, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]
    assert intake.accepted == [] and await count_inbox(sm) == 0


@pytest.mark.parametrize("mutate, field", [
    (lambda e: b"{not json", "body"),
    (lambda e: b"[1, 2]", "body"),
    (lambda e: {k: v for k, v in e.items() if k != "event_id"}, "event_id"),
    (lambda e: {**e, "event_id": ""}, "event_id"),
    (lambda e: {**e, "event_id": "x" * 201}, "event_id"),
    (lambda e: {**e, "sender": "u-42"}, "sender"),
    (lambda e: {**e, "sender": {"name": "王芳"}}, "sender.id"),
    (lambda e: {**e, "sender": {"id": "u-42"}}, "sender.name"),
    (lambda e: {**e, "sender": {"id": "u", "name": "n", "email": 5}}, "sender.email"),
    (lambda e: {k: v for k, v in e.items() if k != "text"}, "text"),
    (lambda e: {**e, "text": "   "}, "text"),
    (lambda e: {k: v for k, v in e.items() if k != "created_at"}, "created_at"),
    (lambda e: {**e, "created_at": "last tuesday"}, "created_at"),
    (lambda e: {**e, "created_at": 10 ** 30}, "created_at"),
    (lambda e: {**e, "attachments": {}}, "attachments"),
    (lambda e: {**e, "attachments": [{"name": "a.jpg", "data": "%%%"}]}, "attachments[0].data"),
    (lambda e: {**e, "attachments": [{"name": "a.jpg"}]}, "attachments[0]"),
])
async def test_invalid_bodies_are_400_naming_the_field(sm, mutate, field):
    intake = FakeIntake(sm)
    data = mutate(event())
    body, headers = signed(data if isinstance(data, bytes) else json.dumps(data).encode())
    async with served(make_channel(intake)) as client:
        resp = await client.post("/webhooks/shop", data=body, headers=headers)
        assert resp.status == 400
        answer = await resp.json()
    assert answer["field"] == field and field in answer["error"]
    assert await count_inbox(sm) == 0


async def test_attachments_and_links_are_kept(sm):
    intake = FakeIntake(sm)
    photo = b"\x89PNG fake image bytes"
    big = b"x" * 2048   # over the channel's 1 KiB limit in this test: metadata only
    body, headers = signed(event(attachments=[
        {"name": "破损.png", "content_type": "image/png", "data": base64.b64encode(photo).decode()},
        {"name": "video.mp4", "content_type": "video/mp4", "data": base64.b64encode(big).decode()},
        {"name": "订单截图", "url": "https://example.com/s/123.jpg"}], meta={"order_no": "DD2026112301"}))
    async with served(make_channel(intake)) as client:
        assert (await client.post("/webhooks/shop", data=body, headers=headers)).status == 200
    [msg] = intake.accepted
    assert [(a.name, a.data) for a in msg.attachments] == [("破损.png", photo), ("video.mp4", None)]
    assert msg.attachments[1].size == 2048 and "limit" in msg.attachments[1].note
    assert "https://example.com/s/123.jpg" in msg.text and msg.meta["order_no"] == "DD2026112301"


async def test_unix_created_at_and_integer_ids_are_accepted(sm):
    intake = FakeIntake(sm)
    body, headers = signed({"event_id": 981, "sender": {"id": 7, "name": ""}, "text": "投诉", "created_at": 1763863200})
    async with served(make_channel(intake)) as client:
        assert (await client.post("/webhooks/shop", data=body, headers=headers)).status == 200
    assert intake.accepted[0].external_id == "981" and intake.accepted[0].sender.handle == "7"


async def test_store_failure_is_503_not_200(sm):
    class Broken(FakeIntake):
        async def accept(self, msg):
            raise ConnectionError("database down")
    async with served(make_channel(Broken(sm))) as client:
        body, headers = signed(event())
        assert (await client.post("/webhooks/shop", data=body, headers=headers)).status == 503


# -- outbound through the callback ----------------------------------------------------------------------

@asynccontextmanager
async def receiver(status=200, answer=None):
    got = []

    async def handle(request):
        got.append((dict(request.headers), await request.read(), dict(await request.post()) if
                    request.content_type == "application/x-www-form-urlencoded" else None))
        return web.json_response(answer or {"id": "cb-1"}, status=status)
    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    async with TestServer(app) as server:
        yield str(server.make_url("/hook")), got


def outbound(source="shop", template="ack", text="您好，您的投诉已受理，编号 20261123-QA-0001。") -> OutboundMessage:
    return OutboundMessage(id=5, channel=f"webhook:{source}", kind=template,
                           reply_to={"source": source, "sender_id": "u-42", "event_id": "evt-1"},
                           payload={"template": template, "text": text, "number": "20261123-QA-0001",
                                    "subject": "[20261123-QA-0001] 您的投诉已受理", "automatic": True},
                           dedupe_key="ack:1")


async def test_answer_goes_to_the_callback_signed_like_inbound(sm):
    async with receiver() as (url, got):
        ch = make_channel(FakeIntake(sm), callback=url)
        result = await ch.send(outbound())
    assert result.external_id == "cb-1"
    [(headers, body, _)] = got
    verify(SECRET, headers["X-Kesu-Timestamp"], headers["X-Kesu-Signature"], body, now=time.time())
    sent = json.loads(body)
    assert sent["recipient"] == {"id": "u-42"} and sent["in_reply_to"] == "evt-1"
    assert sent["complaint"] == "20261123-QA-0001" and sent["type"] == "ack" and "受理" in sent["text"]
    assert headers["X-Kesu-Delivery"] == "ack:1"


@pytest.mark.parametrize("status, error", [(500, TransientSendError), (429, TransientSendError),
                                           (400, PermanentSendError), (410, WindowClosedError)])
async def test_callback_failures_are_classified(sm, status, error):
    async with receiver(status=status) as (url, _):
        ch = make_channel(FakeIntake(sm), callback=url)
        with pytest.raises(error):
            await ch.send(outbound())


async def test_source_without_callback_cannot_be_answered_on_the_channel(sm):
    ch = make_channel(FakeIntake(sm))
    with pytest.raises(WindowClosedError):
        await ch.send(outbound())
    with pytest.raises(TransientSendError):   # nothing listens there
        await make_channel(FakeIntake(sm), callback="http://127.0.0.1:9/hook").send(outbound())


# -- Weibo fan service --------------------------------------------------------------------------------

def weibo_query(secret="weibo-app-secret", ts=None, nonce="5501"):
    ts = str(int(ts if ts is not None else time.time()))
    return {"timestamp": ts, "nonce": nonce, "signature": weibo.signature(secret, ts, nonce)}


async def test_weibo_handshake_and_sample_message(sm):
    intake = FakeIntake(sm)
    sample = (DATA / "samples" / "weibo_fanserve_text.json").read_bytes()
    async with served(make_channel(intake)) as client:
        ok = await client.get("/webhooks/weibo", params={**weibo_query(), "echostr": "e-77"})
        assert (ok.status, await ok.text()) == (200, "e-77")
        assert (await client.get("/webhooks/weibo", params={**weibo_query("wrong"), "echostr": "e"})).status == 401
        for nonce in ("1", "2", "3"):   # the same push three times
            resp = await client.post("/webhooks/weibo", data=sample, params=weibo_query(nonce=nonce))
            assert resp.status == 200
    assert await count_inbox(sm) == 1
    msg = intake.accepted[0]
    assert (msg.channel, msg.sender.handle, msg.text) == ("webhook:weibo", "2489518277", "私信或留言内容")
    assert msg.received_at.isoformat() == "2012-07-16T10:09:20+00:00"


async def test_weibo_forgeries_are_refused(sm):
    intake = FakeIntake(sm)
    sample = (DATA / "samples" / "weibo_fanserve_text.json").read_bytes()
    async with served(make_channel(intake)) as client:
        assert (await client.post("/webhooks/weibo", data=sample, params=weibo_query("guess"))).status == 401
        assert (await client.post("/webhooks/weibo", data=sample,
                                  params=weibo_query(ts=time.time() - 3600))).status == 401
        q = weibo_query(nonce="9")
        assert (await client.post("/webhooks/weibo", data=sample, params=q)).status == 200
        other = sample.replace("私信或留言内容".encode(), "伪造的内容".encode())
        assert (await client.post("/webhooks/weibo", data=other, params=q)).status == 401   # same nonce, new body
    assert await count_inbox(sm) == 1


async def test_weibo_reply_uses_the_fan_service_api(sm):
    async with receiver(answer={"id": 345}) as (url, got):
        ch = make_channel(FakeIntake(sm), weibo_callback=url + "?access_token=TOKEN123")
        result = await ch.send(outbound("weibo"))
    [(_, _, form)] = got
    assert form["access_token"] == "TOKEN123" and form["receiver_id"] == "u-42" and form["type"] == "text"
    assert "受理" in json.loads(unquote(form["data"]))["text"] and result.external_id == "345"
    async with receiver(answer={"error_code": 21327, "error": "expired_token"}) as (url, _):
        ch = make_channel(FakeIntake(sm), weibo_callback=url + "?access_token=OLD")
        with pytest.raises(PermanentSendError, match="expired_token"):
            await ch.send(outbound("weibo"))


# -- Douyin -------------------------------------------------------------------------------------------

def douyin_headers(body: bytes, secret="douyin-client-secret", msg_id="m-1"):
    return {"X-Douyin-Signature": douyin.signature(secret, body), "Msg-Id": msg_id,
            "Content-Type": "application/json"}


async def test_douyin_verification_challenge(sm):
    body = (DATA / "samples" / "douyin_verify_webhook.json").read_bytes()
    async with served(make_channel(FakeIntake(sm))) as client:
        resp = await client.post("/webhooks/douyin", data=body, headers=douyin_headers(body))
        assert (resp.status, await resp.json()) == (200, {"challenge": 12345})
        forged = await client.post("/webhooks/douyin", data=body, headers=douyin_headers(body, "guess"))
        assert forged.status == 401
    assert await count_inbox(sm) == 0


async def test_douyin_event_deduplicated_on_msg_id(sm):
    intake = FakeIntake(sm)
    body = (DATA / "samples" / "douyin_life_trade_order_notify.json").read_bytes()
    async with served(make_channel(intake)) as client:
        answers = []
        for _ in range(3):
            resp = await client.post("/webhooks/douyin", data=body, headers=douyin_headers(body, msg_id="MSG-9"))
            answers.append((resp.status, (await resp.json())["status"]))
        assert answers == [(200, "accepted"), (200, "duplicate"), (200, "duplicate")]
        tampered = body.replace(b"pay_success", b"refund_success")
        assert (await client.post("/webhooks/douyin", data=tampered, headers=douyin_headers(body))).status == 401
    assert await count_inbox(sm) == 1
    msg = intake.accepted[0]
    assert msg.kind is MessageKind.EVENT and msg.external_id == "MSG-9"
    assert msg.meta["douyin_event"] == "life_trade_order_notify" and msg.meta["content"]["action"] == "pay_success"


async def test_douyin_private_message_becomes_a_complaint(sm):
    intake = FakeIntake(sm)
    body = json.dumps({"event": "im_receive_msg", "from_user_id": "douyin-user-1", "to_user_id": "shop-1",
                       "client_key": "awx", "content": json.dumps({"message_type": "text", "text": "团购券无法核销",
                                                                    "create_time": 1763863200,
                                                                    "conversation_short_id": "c-1"})},
                      ensure_ascii=False).encode()
    async with served(make_channel(intake)) as client:
        assert (await client.post("/webhooks/douyin", data=body, headers=douyin_headers(body))).status == 200
    [msg] = intake.accepted
    assert (msg.kind, msg.text, msg.sender.handle) == (MessageKind.MESSAGE, "团购券无法核销", "douyin-user-1")
    assert msg.reply_to["conversation_id"] == "c-1"


# -- settings -----------------------------------------------------------------------------------------

def test_from_settings_and_refusals(sm):
    assert from_settings(Settings(), FakeIntake(sm), sm) is None
    ch = from_settings(Settings(webhook_sources=(WebhookSource("shop", "s"), WebhookSource("weibo", "w"))),
                       FakeIntake(sm), sm)
    assert ch.name == "webhook" and set(ch.sources) == {"shop", "weibo"}
    for bad in (WebhookSource("shop", ""), WebhookSource("wechat", "s"), WebhookSource("a" * 33, "s"),
                WebhookSource("has space", "s")):
        with pytest.raises(ValueError):
            from_settings(Settings(webhook_sources=(bad,)), FakeIntake(sm), sm)
