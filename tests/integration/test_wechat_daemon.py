"""WeChat through the running daemon (real pipeline, worker, outbox dispatcher) on both engines,
against a local server that follows WeChat's published API contract."""
from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from connectors.wechat import WechatCrypto, xmlmsg
from intake.daemon import Kesu
from intake.settings import Settings, SmtpSettings, WechatSettings
from models import Complaint, CustomerIdentity, InboxItem, OutboxItem
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from tests.wechat_stub import WechatStub, safe_request, text_xml

APPID, TOKEN, AES = "wx5823bf96d3bd56c7", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
NUMBER = re.compile(r"\d{8}-[A-Z]{2}-\d{4}")


def settings_for(db_url, tmp_path, stub, **extra) -> Settings:
    return daemon_settings(db_url, tmp_path, worker_idle_seconds=0.05,
                    wechat=WechatSettings(appid=APPID, secret=stub.secret, token=TOKEN, aes_key=AES, mode="safe",
                                          api_base=stub.url), **extra)


async def push(http, kesu, xml: bytes, nonce: str) -> dict:
    crypto = WechatCrypto(TOKEN, AES, APPID)
    params, body = safe_request(crypto, xml, int(time.time()), nonce=nonce)
    async with http.post(f"http://127.0.0.1:{kesu.http_port}/webhooks/wechat", data=body, params=params) as resp:
        assert resp.status == 200
        answer = await resp.read()
    if answer == b"success":
        return {}
    outer = xmlmsg.parse(answer)
    crypto.check(outer["TimeStamp"], outer["Nonce"], outer["Encrypt"], outer["MsgSignature"])
    return xmlmsg.parse(crypto.decrypt(outer["Encrypt"]))


async def outbox_settled(kesu, **where) -> list[OutboxItem]:
    """Wait (bounded) until the dispatcher has finished with the matching rows."""
    for _ in range(200):
        async with kesu.runtime.sessionmaker() as s:
            rows = (await s.scalars(select(OutboxItem).filter_by(**where).order_by(OutboxItem.id))).all()
        if rows and all(r.status not in ("pending", "sending") for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox rows {where} never settled: {[(r.status, r.last_error) for r in rows]}")


async def test_message_three_times_is_one_complaint_acknowledged_once_by_passive_reply(db_url, tmp_path):
    async with WechatStub(appid=APPID) as stub, aiohttp.ClientSession() as http:
        async with Kesu(settings_for(db_url, tmp_path, stub), classifier=KeywordClassifier()) as kesu:
            xml = text_xml(content="快递三天没到，电话也打不通")
            replies = [await push(http, kesu, xml, nonce=str(n)) for n in range(3)]
            contents = {r["Content"] for r in replies}
            assert len(contents) == 1
            [content] = contents
            number = NUMBER.search(content).group(0)
            [ack] = await outbox_settled(kesu, kind="ack")
            async with kesu.runtime.sessionmaker() as s:
                assert await s.scalar(select(func.count()).select_from(Complaint)) == 1
                assert await s.scalar(select(Complaint.number)) == number
                assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1
            assert ack.status == "sent" and ack.payload["text"] == content   # the pipeline's own text, once
            assert stub.sent == []                                           # never also by the API


async def test_progress_goes_by_api_with_token_refresh_and_48_hour_window_falls_back(db_url, tmp_path):
    async with WechatStub(appid=APPID) as stub, aiohttp.ClientSession() as http:
        smtp = SmtpSettings(host="127.0.0.1", port=9, sender="kesu@example.com", tls="none")
        async with Kesu(settings_for(db_url, tmp_path, stub, smtp=smtp), classifier=KeywordClassifier()) as kesu:
            await push(http, kesu, text_xml(content="退款申请一个月了还没到账"), nonce="1")
            await outbox_settled(kesu, kind="ack")
            async with kesu.runtime.sessionmaker() as s:
                c = await s.scalar(select(Complaint))
                s.add(CustomerIdentity(customer_id=c.customer_id, kind="email", value_hash="h-test",
                                       value="li@example.com"))
                await s.commit()

            async def reply(n: int, text: str):
                async with kesu.runtime.sessionmaker() as s:
                    s.add(OutboxItem(channel="wechat", kind="reply", complaint_id=c.id, reply_to=c.reply_to,
                                     payload={"template": "reply", "text": text, "number": c.number},
                                     dedupe_key=f"reply:{c.id}:{n}", status="pending"))
                    await s.commit()
                kesu.dispatcher.wake.set()
                return (await outbox_settled(kesu, dedupe_key=f"reply:{c.id}:{n}"))[0]

            first = await reply(1, "您好，退款已提交财务处理")
            stub.invalidate_tokens()                   # the token is reset elsewhere: next call gets 40001
            second = await reply(2, "退款已到账，请查收")
            assert (first.status, second.status) == ("sent", "sent")
            assert [m["content"] for m in stub.sent] == ["您好，退款已提交财务处理", "退款已到账，请查收"]
            assert 40001 in [code for _, code in stub.calls] and len(stub.issued) == 2

            stub.window_closed.add(c.reply_to["openid"])   # 48 hours have passed since the customer wrote
            third = await reply(3, "请对本次处理进行评价")
            assert third.status == "undeliverable" and "45015" in third.last_error
            async with kesu.runtime.sessionmaker() as s:
                fallback = await s.scalar(select(OutboxItem).where(OutboxItem.dedupe_key == f"reply:{c.id}:3:email"))
            assert fallback is not None and fallback.reply_to["address"] == "li@example.com"
            assert fallback.payload["text"] == "请对本次处理进行评价"


async def test_subscribe_is_welcomed_and_registers_no_complaint(db_url, tmp_path):
    async with WechatStub(appid=APPID) as stub, aiohttp.ClientSession() as http:
        async with Kesu(settings_for(db_url, tmp_path, stub), classifier=KeywordClassifier()) as kesu:
            xml = (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oFan]]></FromUserName>"
                   f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                   f"<Event><![CDATA[subscribe]]></Event></xml>").encode()
            reply = await push(http, kesu, xml, nonce="1")
            assert "投诉" in reply["Content"]
            for _ in range(100):
                async with kesu.runtime.sessionmaker() as s:
                    status = await s.scalar(select(InboxItem.status))
                if status != "pending":
                    break
                await asyncio.sleep(0.05)
            async with kesu.runtime.sessionmaker() as s:
                assert await s.scalar(select(func.count()).select_from(Complaint)) == 0
                assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1


async def test_forged_push_is_refused_by_the_daemon(db_url, tmp_path):
    async with WechatStub(appid=APPID) as stub, aiohttp.ClientSession() as http:
        async with Kesu(settings_for(db_url, tmp_path, stub), classifier=KeywordClassifier()) as kesu:
            params, body = safe_request(WechatCrypto(TOKEN, AES, APPID), text_xml(), int(time.time()))
            params["msg_signature"] = "0" * 40
            async with http.post(f"http://127.0.0.1:{kesu.http_port}/webhooks/wechat", data=body,
                                 params=params) as resp:
                assert resp.status == 401
            async with kesu.runtime.sessionmaker() as s:
                assert await s.scalar(select(func.count()).select_from(InboxItem)) == 0
