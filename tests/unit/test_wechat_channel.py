"""The WeChat channel end to end in one process: real inbox (SQLite), a local stand-in for WeChat's API."""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from connectors.base import (MessageKind, OutboundMessage, PermanentSendError, TransientSendError,
                             WindowClosedError)
from connectors.wechat import WELCOME_TEXT, WechatChannel, WechatCrypto, from_settings, xmlmsg
from intake.settings import Settings, WechatSettings
from models import InboxItem
from tests.wechat_stub import (FakeIntake, WechatStub, count_inbox, migrated_sqlite_url, plain_query, safe_request, sqlite_sessionmaker,
                               text_xml)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "webhooks"
VECTORS = json.loads((DATA / "vectors.json").read_text())
APPID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
def db(tmp_path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest_asyncio.fixture
async def sm(db):
    engine, sm = await sqlite_sessionmaker(db)
    yield sm
    await engine.dispose()


_OPEN: list[WechatChannel] = []


@pytest_asyncio.fixture(autouse=True)
async def close_channels():
    yield
    while _OPEN:
        await _OPEN.pop().close()


@pytest_asyncio.fixture
async def stub():
    async with WechatStub(appid=APPID) as s:
        yield s


def channel_for(sm, stub, intake=None, *, mode="safe", token=TOKEN, aes_key=AES, appid=APPID, clock=time.time,
                **kw) -> WechatChannel:
    ch = WechatChannel(appid=appid, secret=stub.secret if stub else "s3cret", token=token, aes_key=aes_key,
                         mode=mode, api_base=stub.url if stub else "http://127.0.0.1:9", intake=intake or FakeIntake(sm),
                         sessionmaker=sm, attachment_limit=1024 * 1024, clock=clock, **kw)
    _OPEN.append(ch)
    return ch


@asynccontextmanager
async def served(channel):
    app = web.Application()
    channel.setup_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


def ack_item(number, openid="oCustomer1", msg="6100000000000000001", template="ack", text=None, item_id=1):
    return OutboundMessage(id=item_id, channel="wechat", kind=template,
                           reply_to={"openid": openid, "account": "gh_test", "msg": msg},
                           payload={"template": template, "number": number, "text": text or f"受理编号 {number}",
                                    "automatic": True}, dedupe_key=f"{template}:{item_id}")


def reply_fields(channel: WechatChannel, body: bytes) -> dict:
    outer = xmlmsg.parse(body)
    if "Encrypt" not in outer:
        return outer
    channel.crypto.check(outer["TimeStamp"], outer["Nonce"], outer["Encrypt"], outer["MsgSignature"])
    return xmlmsg.parse(channel.crypto.decrypt(outer["Encrypt"]))


# -- server URL verification ------------------------------------------------------------------------

async def test_server_url_check_answers_echostr_for_the_published_vector(sm):
    v = VECTORS["wechat_official_account_plain"]
    ch = channel_for(sm, None, mode="plain", token=v["token"], aes_key=None, clock=lambda: int(v["timestamp"]))
    async with served(ch) as client:
        ok = await client.get("/webhooks/wechat", params={"signature": v["signature"], "timestamp": v["timestamp"],
                                                          "nonce": v["nonce"], "echostr": "hello-5927"})
        assert (ok.status, await ok.text()) == (200, "hello-5927")
        bad = await client.get("/webhooks/wechat", params={"signature": "0" * 40, "timestamp": v["timestamp"],
                                                           "nonce": v["nonce"], "echostr": "hello"})
        assert bad.status == 401 and "hello" not in await bad.text()


async def test_server_url_check_refuses_a_stale_timestamp(sm):
    v = VECTORS["wechat_official_account_plain"]
    ch = channel_for(sm, None, mode="plain", token=v["token"], aes_key=None)   # real clock: 2014 is too old
    async with served(ch) as client:
        resp = await client.get("/webhooks/wechat", params={"signature": v["signature"], "timestamp": v["timestamp"],
                                                            "nonce": v["nonce"], "echostr": "x"})
        assert resp.status == 401


async def test_encrypted_echostr_check_decrypts_the_vector(sm):
    v = VECTORS["wecom_echostr"]
    ch = channel_for(sm, None, token=v["token"], aes_key=v["encoding_aes_key"], appid=v["receiver_id"],
                     clock=lambda: int(v["timestamp"]))
    async with served(ch) as client:
        resp = await client.get("/webhooks/wechat", params={"msg_signature": v["msg_signature"],
                                                            "timestamp": v["timestamp"], "nonce": v["nonce"],
                                                            "echostr": v["encrypt"]})
        assert (resp.status, await resp.text()) == (200, v["plaintext"])


# -- inbound messages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tencent_wxbizmsgcrypt_sample", "wecom_message"])
async def test_safe_mode_vector_is_stored_then_acknowledged_in_an_encrypted_reply(sm, name):
    v = VECTORS[name]
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, token=v["token"], aes_key=v["encoding_aes_key"], appid=v["receiver_id"],
                     clock=lambda: int(v["timestamp"]))
    body = (DATA / v["request_body_file"]).read_bytes()
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=body, params={
            "timestamp": v["timestamp"], "nonce": v["nonce"], "msg_signature": v["msg_signature"],
            "encrypt_type": "aes"})
        assert resp.status == 200
        reply = reply_fields(ch, await resp.read())
    [msg] = intake.accepted
    assert msg.channel == "wechat" and msg.kind is MessageKind.MESSAGE
    assert msg.text in ("hello", "test") and msg.sender.handle in ("mycreate", "messense")
    assert msg.reply_to == {"openid": msg.sender.handle, "account": v["receiver_id"], "msg": msg.external_id}
    assert v["plaintext_contains"].encode() in msg.raw   # kept decrypted, so it can be processed again
    number = (await intake.outcome("wechat", msg.external_id))[1]
    assert reply["ToUserName"] == msg.sender.handle and reply["MsgType"] == "text"
    assert number in reply["Content"] and "受理" in reply["Content"]


async def test_plain_mode_sample_message_is_acknowledged_in_plain_xml(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, mode="plain", aes_key=None)
    body = (DATA / "samples" / "wechat_oa_text_message.xml").read_bytes()
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=body, params=plain_query(TOKEN, int(time.time())))
        assert resp.status == 200 and resp.content_type == "application/xml"
        reply = xmlmsg.parse(await resp.read())
    assert (reply["ToUserName"], reply["FromUserName"]) == ("fromUser", "toUser")
    [msg] = intake.accepted
    assert (msg.external_id, msg.text, msg.sender.handle) == ("1234567890123456", "this is a test", "fromUser")
    assert (await intake.outcome("wechat", "1234567890123456"))[1] in reply["Content"]


async def test_same_message_three_times_is_one_complaint_with_three_identical_answers(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake)
    crypto = WechatCrypto(TOKEN, AES, APPID)
    xml = text_xml(content="买的电饭煲第二天就坏了")
    contents = []
    async with served(ch) as client:
        for attempt in range(3):   # WeChat's retries carry a new timestamp and nonce
            params, body = safe_request(crypto, xml, int(time.time()), nonce=f"9{attempt}")
            resp = await client.post("/webhooks/wechat", data=body, params=params)
            assert resp.status == 200
            contents.append(reply_fields(ch, await resp.read())["Content"])
    assert len(set(contents)) == 1 and "编号" in contents[0]
    assert await count_inbox(sm) == 1
    async with sm() as s:
        assert (await s.scalar(select(InboxItem.status))) == "done"
    assert len({(c, e) for c, e, _ in intake.process_calls}) == 1


@pytest.mark.parametrize("case", ["no signature", "wrong signature", "old timestamp", "future timestamp",
                                  "plaintext in safe mode", "other app id", "tampered ciphertext", "no timestamp"])
async def test_forged_or_replayed_requests_are_401_and_store_nothing(sm, case):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake)
    crypto = WechatCrypto(TOKEN, AES, APPID)
    now = int(time.time())
    xml = text_xml()
    params, body = safe_request(crypto, xml, now)
    if case == "no signature":
        params.pop("msg_signature")
    elif case == "wrong signature":
        params["msg_signature"] = "f" * 40
    elif case == "old timestamp":
        params, body = safe_request(crypto, xml, now - 3600)
    elif case == "future timestamp":
        params, body = safe_request(crypto, xml, now + 3600)
    elif case == "plaintext in safe mode":
        params, body = plain_query(TOKEN, now), xml
    elif case == "other app id":
        params, body = safe_request(WechatCrypto(TOKEN, AES, "wx_other"), xml, now)
    elif case == "tampered ciphertext":
        body = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
    elif case == "no timestamp":
        params.pop("timestamp")
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=body, params=params)
        assert resp.status == 401
    assert intake.accepted == [] and await count_inbox(sm) == 0


async def test_plain_mode_nonce_reused_with_another_body_is_refused(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, mode="plain", aes_key=None)
    params = plain_query(TOKEN, int(time.time()), nonce="777")
    async with served(ch) as client:
        body = text_xml(msg_id="1", created=1700000000)
        assert (await client.post("/webhooks/wechat", data=body, params=params)).status == 200
        assert (await client.post("/webhooks/wechat", data=body, params=params)).status == 200   # a plain retry
        forged = await client.post("/webhooks/wechat", data=text_xml(msg_id="2", content="伪造", created=1700000000),
                                   params=params)
        assert forged.status == 401
    assert await count_inbox(sm) == 1


async def test_valid_signature_but_incomplete_message_is_400(sm):
    ch = channel_for(sm, None, mode="plain", aes_key=None)
    async with served(ch) as client:
        for i, body in enumerate((b"<xml><MsgType>text</MsgType></xml>", b"not xml at all",
                                  b"<xml><FromUserName>o</FromUserName><MsgType>text</MsgType>"
                                  b"<CreateTime>soon</CreateTime><MsgId>1</MsgId></xml>")):
            resp = await client.post("/webhooks/wechat", data=body, params=plain_query(TOKEN, int(time.time()), f"n{i}"))
            assert resp.status == 400
    assert await count_inbox(sm) == 0


async def test_store_failure_is_not_acknowledged(sm):
    class BrokenIntake(FakeIntake):
        async def accept(self, msg):
            raise ConnectionError("database down")
    ch = channel_for(sm, None, BrokenIntake(sm), mode="plain", aes_key=None)
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=text_xml(), params=plain_query(TOKEN, int(time.time())))
        assert resp.status == 503    # WeChat retries; nothing was committed


# -- the 5-second answer and who acknowledges -----------------------------------------------------------

async def test_slow_pipeline_answers_success_then_ack_goes_through_the_api(sm, stub):
    intake = FakeIntake(sm, ready=False)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None, reply_budget=0.5)
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=text_xml(), params=plain_query(TOKEN, int(time.time())))
        assert (resp.status, await resp.text()) == (200, "success")
    [(_, _, timeout)] = intake.process_calls
    assert 0 < timeout <= 0.5               # the pipeline only got what was left of the budget
    assert await count_inbox(sm) == 1       # committed before answering
    result = await ch.send(ack_item("20261123-LG-0001"))
    assert result.detail == "customer-service message"
    assert stub.sent == [{"touser": "oCustomer1", "msgtype": "text", "content": "受理编号 20261123-LG-0001"}]


async def test_ack_carried_by_the_passive_reply_is_not_sent_again(sm, stub):
    intake = FakeIntake(sm)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None)
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=text_xml(), params=plain_query(TOKEN, int(time.time())))
        number = (await intake.outcome("wechat", "6100000000000000001"))[1]
        assert number in xmlmsg.parse(await resp.read())["Content"]
    result = await ch.send(ack_item(number))
    assert result.detail == "passive reply" and stub.sent == [] and stub.issued == []
    # later messages on the same complaint still go out
    await ch.send(ack_item(number, template="progress", text="正在处理"))
    assert [m["content"] for m in stub.sent] == ["正在处理"]


async def test_retry_after_the_api_acknowledged_answers_success(sm, stub):
    intake = FakeIntake(sm, ready=False)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None, reply_budget=0.3)
    async with served(ch) as client:
        first = await client.post("/webhooks/wechat", data=text_xml(), params=plain_query(TOKEN, int(time.time()), "1"))
        assert await first.text() == "success"
        intake.ready = True
        number = await intake.process_now("wechat", "6100000000000000001")
        await ch.send(ack_item(number))                     # the dispatcher got there first
        retry = await client.post("/webhooks/wechat", data=text_xml(), params=plain_query(TOKEN, int(time.time()), "2"))
        assert await retry.text() == "success"             # not a second acknowledgement
    assert len(stub.sent) == 1


async def test_follow_up_on_a_known_complaint_gets_no_second_ack(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, mode="plain", aes_key=None)
    async with served(ch) as client:
        first = await client.post("/webhooks/wechat", data=text_xml(msg_id="1"), params=plain_query(TOKEN, int(time.time()), "1"))
        assert "编号" in xmlmsg.parse(await first.read())["Content"]
        number = (await intake.outcome("wechat", "1"))[1]

        async def same_complaint(channel, external_id, timeout=3.0):
            return number
        intake.process_now = same_complaint
        second = await client.post("/webhooks/wechat", data=text_xml(msg_id="2", content="补充订单号"),
                                   params=plain_query(TOKEN, int(time.time()), "2"))
        assert await second.text() == "success"


# -- message types ------------------------------------------------------------------------------------

def typed_xml(mtype: str, extra: str, msg_id: str | None = "6200000000000000001", openid: str = "oCustomer2") -> bytes:
    mid = f"<MsgId>{msg_id}</MsgId>" if msg_id else ""
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[{mtype}]]></MsgType>{extra}{mid}</xml>").encode()


async def post_plain(ch, body, nonce="1"):
    async with served(ch) as client:
        resp = await client.post("/webhooks/wechat", data=body, params=plain_query(TOKEN, int(time.time()), nonce))
        return resp.status, await resp.read()


async def test_image_is_fetched_through_the_media_api(sm, stub):
    stub.media["MEDIA_1"] = (b"\xff\xd8\xff\xe0 a real jpeg would be longer", "image/jpeg")
    intake = FakeIntake(sm)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None)
    status, _ = await post_plain(ch, typed_xml("image", "<PicUrl><![CDATA[http://mmbiz/x.jpg]]></PicUrl>"
                                                        "<MediaId><![CDATA[MEDIA_1]]></MediaId>"))
    assert status == 200
    [msg] = intake.accepted
    [att] = msg.attachments
    assert (att.name, att.content_type, att.data) == ("MEDIA_1.jpg", "image/jpeg", stub.media["MEDIA_1"][0])
    assert msg.meta["media_id"] == "MEDIA_1" and msg.text == "[图片]"


async def test_image_that_cannot_be_fetched_keeps_its_media_id(sm, stub):
    intake = FakeIntake(sm)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None)
    status, _ = await post_plain(ch, typed_xml("image", "<MediaId><![CDATA[GONE]]></MediaId>"))
    assert status == 200
    [att] = intake.accepted[0].attachments
    assert att.data is None and "GONE" in att.note and intake.accepted[0].meta["media_id"] == "GONE"


async def test_voice_uses_the_recognition_text(sm, stub):
    stub.media["VOICE_1"] = (b"#!AMR\n...", "audio/amr")
    intake = FakeIntake(sm)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None)
    await post_plain(ch, typed_xml("voice", "<MediaId><![CDATA[VOICE_1]]></MediaId><Format><![CDATA[amr]]></Format>"
                                            "<Recognition><![CDATA[快递员把包裹扔在门口]]></Recognition>"))
    [msg] = intake.accepted
    assert msg.text == "快递员把包裹扔在门口" and msg.attachments[0].content_type == "audio/amr"


async def test_location_becomes_text_and_meta(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, mode="plain", aes_key=None)
    await post_plain(ch, typed_xml("location", "<Location_X>31.230416</Location_X><Location_Y>121.473701</Location_Y>"
                                               "<Scale>15</Scale><Label><![CDATA[上海市黄浦区人民大道]]></Label>"))
    [msg] = intake.accepted
    assert "上海市黄浦区人民大道" in msg.text and msg.meta["location"]["lat"] == "31.230416"


async def test_subscribe_gets_the_welcome_once_and_no_complaint(sm, stub):
    intake = FakeIntake(sm)
    ch = channel_for(sm, stub, intake, mode="plain", aes_key=None)
    sub = typed_xml("event", "<Event><![CDATA[subscribe]]></Event>", msg_id=None, openid="oNewFan")
    status, body = await post_plain(ch, sub, "1")
    assert status == 200 and xmlmsg.parse(body)["Content"] == WELCOME_TEXT
    status, again = await post_plain(ch, sub, "2")    # WeChat's retry of the same event
    assert xmlmsg.parse(again)["Content"] == WELCOME_TEXT
    assert await count_inbox(sm) == 1 and intake.process_calls == []
    [msg] = intake.accepted[:1]
    assert msg.kind is MessageKind.EVENT and msg.external_id == "event:oNewFan:1700000000:subscribe"
    # a welcome queued by the pipeline for the same event is not sent a second time
    result = await ch.send(OutboundMessage(id=9, channel="wechat", kind="welcome", reply_to=msg.reply_to,
                                           payload={"template": "welcome", "text": WELCOME_TEXT}, dedupe_key="w"))
    assert result.detail == "passive reply" and stub.sent == []


async def test_other_events_are_recorded_and_answered_success(sm):
    intake = FakeIntake(sm)
    ch = channel_for(sm, None, intake, mode="plain", aes_key=None)
    status, body = await post_plain(ch, typed_xml("event", "<Event><![CDATA[unsubscribe]]></Event>", msg_id=None))
    assert (status, body) == (200, b"success")
    assert intake.accepted[0].meta["event"] == "unsubscribe"


# -- outbound -----------------------------------------------------------------------------------------

async def test_token_is_cached_between_sends(sm, stub):
    ch = channel_for(sm, stub)
    await ch.send(ack_item("N1", template="progress"))
    await ch.send(ack_item("N1", template="reply", text="您好，已为您退款"))
    assert len(stub.issued) == 1 and len(stub.sent) == 2


async def test_token_rejected_with_40001_is_refreshed_and_the_send_succeeds(sm, stub):
    ch = channel_for(sm, stub)
    await ch.send(ack_item("N1", template="progress"))
    stub.invalidate_tokens()
    await ch.send(ack_item("N1", template="progress", text="第二条"))
    assert [code for _, code in stub.calls] == [0, 40001, 0]
    assert len(stub.issued) == 2 and [m["content"] for m in stub.sent] == ["受理编号 N1", "第二条"]


async def test_expired_token_42001_is_refreshed(sm, stub):
    ch = channel_for(sm, stub)
    await ch.send(ack_item("N1", template="progress"))
    stub.expire_tokens()
    await ch.send(ack_item("N1", template="progress"))
    assert [code for _, code in stub.calls] == [0, 42001, 0] and len(stub.issued) == 2


async def test_token_is_refreshed_before_it_expires(sm, stub):
    now = [1000.0]
    ch = channel_for(sm, stub)
    ch.api._clock = lambda: now[0]
    await ch.send(ack_item("N1", template="progress"))
    now[0] += 7200 - 299          # inside the refresh margin: a new token before WeChat rejects the old one
    await ch.send(ack_item("N1", template="progress"))
    assert len(stub.issued) == 2 and [code for _, code in stub.calls] == [0, 0]


@pytest.mark.parametrize("limit", ["window_closed", "over_limit"])
async def test_outside_the_48_hour_window_raises_window_closed(sm, stub, limit):
    getattr(stub, limit).add("oCustomer1")
    ch = channel_for(sm, stub)
    with pytest.raises(WindowClosedError, match="4504|45015"):
        await ch.send(ack_item("N1", template="progress"))


async def test_system_busy_is_transient_and_bad_secret_is_permanent(sm, stub):
    stub.busy = 1
    ch = channel_for(sm, stub)
    with pytest.raises(TransientSendError):
        await ch.send(ack_item("N1", template="progress"))
    await ch.send(ack_item("N1", template="progress"))
    wrong = WechatChannel(appid=APPID, secret="wrong", token=TOKEN, aes_key=AES, mode="safe", api_base=stub.url,
                          intake=FakeIntake(sm), sessionmaker=sm, attachment_limit=1)
    _OPEN.append(wrong)
    with pytest.raises(PermanentSendError, match="40125"):
        await wrong.send(ack_item("N1", template="progress"))


async def test_unreachable_api_is_transient_and_missing_openid_permanent(sm):
    ch = channel_for(sm, None)   # nothing listens on port 9
    with pytest.raises(TransientSendError):
        await ch.send(ack_item("N1", template="progress"))
    with pytest.raises(PermanentSendError):
        await ch.send(OutboundMessage(id=1, channel="wechat", kind="reply", reply_to={}, payload={"text": "x"},
                                      dedupe_key="r"))


# -- settings -----------------------------------------------------------------------------------------

def test_from_settings(sm):
    assert from_settings(Settings(), FakeIntake(sm), sm) is None
    ch = from_settings(Settings(wechat=WechatSettings(appid=APPID, secret="s", token=TOKEN, aes_key=AES)),
                       FakeIntake(sm), sm)
    assert ch.name == "wechat" and ch.mode == "safe"
    with pytest.raises(ValueError, match="aes_key"):
        from_settings(Settings(wechat=WechatSettings(appid=APPID, secret="s", token=TOKEN)), FakeIntake(sm), sm)


async def test_send_waits_for_a_pending_passive_reply_then_takes_over_when_it_lapses(sm, stub):
    from connectors.wechat import claims
    ch = channel_for(sm, stub)
    key = claims.message_key("6100000000000000001")
    await claims.claim(sm, key, claims.passive_claim(time.time() + 0.2))   # a handler that died mid-answer
    result = await ch.send(ack_item("N7"))
    assert result.detail == "customer-service message" and len(stub.sent) == 1
    assert (await claims.read(sm, key))["by"] == "api"
    assert (await ch.send(ack_item("N7"))).detail == "customer-service message"   # a dispatcher retry sends again


async def test_send_skips_the_ack_once_the_pending_passive_reply_is_done(sm, stub):
    from connectors.wechat import claims
    ch = channel_for(sm, stub)
    key = claims.message_key("6100000000000000001")
    held = claims.passive_claim(time.time() + 3)
    await claims.claim(sm, key, held)

    async def handler_finishes():
        await asyncio.sleep(0.1)
        await claims.settle(sm, key, {**held, "state": claims.DONE})
    finishing = asyncio.create_task(handler_finishes())
    result = await ch.send(ack_item("N8"))
    await finishing
    assert result.detail == "passive reply" and stub.sent == []


async def test_old_answer_claims_are_purged_and_recent_ones_kept(sm):
    from datetime import timedelta

    from sqlalchemy import update

    from connectors.wechat import claims
    from models import ChannelCursor, utcnow
    await claims.claim(sm, claims.message_key("old"), {"by": "api"})
    await claims.claim(sm, claims.message_key("new"), {"by": "api"})
    await claims.claim(sm, "imap:box", {"uid": 1})      # another connector's cursor: never touched
    async with sm() as s:
        await s.execute(update(ChannelCursor).where(ChannelCursor.key.in_([claims.message_key("old"), "imap:box"]))
                        .values(updated_at=utcnow() - timedelta(days=30)))
        await s.commit()
    assert await claims.purge(sm, timedelta(days=14)) == 1
    assert await claims.read(sm, claims.message_key("old")) is None
    assert await claims.read(sm, claims.message_key("new")) and await claims.read(sm, "imap:box")
