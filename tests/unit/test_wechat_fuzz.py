"""10 000 random or mutated pushes to /webhooks/wechat (plain bodies and AES envelopes): never a
5xx, and only verified messages are stored. Seeded, so a failure can be replayed."""
from __future__ import annotations

import random
import re
import time

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from connectors.wechat import WechatChannel, WechatCrypto
from models import InboxItem
from tests.wechat_stub import (FakeIntake, migrated_sqlite_url, mutate, plain_query, safe_request, sqlite_sessionmaker,
                               text_xml)

N = 10_000
APPID, TOKEN, AES = "wx5823bf96d3bd56c7", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
def db(tmp_path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest_asyncio.fixture
async def sm(db):
    engine, sm = await sqlite_sessionmaker(db)
    yield sm
    await engine.dispose()


def base_xml(rng: random.Random, now: int) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return text_xml(msg_id=str(rng.randrange(50)), created=now)
    if kind == 1:
        return (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
                f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[subscribe]]></Event></xml>").encode()
    if kind == 2:
        return (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o2]]></FromUserName>"
                f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>23.1</Location_X>"
                f"<Location_Y>113.2</Location_Y><Label><![CDATA[广州]]></Label><MsgId>{rng.randrange(50)}</MsgId></xml>").encode()
    return (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o3]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId>"
            f"<Recognition><![CDATA[洗衣机噪音很大]]></Recognition><MsgId>{rng.randrange(50)}</MsgId></xml>").encode()


async def test_fuzzed_pushes_never_5xx_and_nothing_unverified_is_stored(sm):
    intake = FakeIntake(sm, ready=False)
    # plain mode with a key: both the plain path and the AES path are exercised
    ch = WechatChannel(appid=APPID, secret="s", token=TOKEN, aes_key=AES, mode="plain",
                       api_base="http://127.0.0.1:9", intake=intake, sessionmaker=sm, attachment_limit=1 << 20)
    ch._fetch = _no_fetch   # media fetches are tested elsewhere; here they would only wait on a closed port
    crypto = WechatCrypto(TOKEN, AES, APPID)
    app = web.Application()
    ch.setup_routes(app)
    rng = random.Random("kesu-fuzz-wechat")
    now = int(time.time())
    statuses: dict[int, int] = {}
    verified: set[bytes] = set()
    async with TestClient(TestServer(app)) as client:
        for i in range(N):
            base = base_xml(rng, now)
            path = rng.random()
            must_refuse = False
            if path < 0.4:                               # plain body, signed query (fresh nonce)
                body = mutate(rng, base)
                params = plain_query(TOKEN, now, nonce=f"p{i}")
                if rng.random() < 0.15:
                    params[rng.choice(["signature", "timestamp", "nonce"])] = rng.choice(["", "0" * 40, "x", "1"])
                    must_refuse = True
                else:
                    verified.add(body)
            elif path < 0.7:                             # valid envelope around a mutated message
                inner = mutate(rng, base)
                params, body = safe_request(crypto, inner, now, nonce=f"s{i}")
                verified.add(inner)
            else:                                        # mutated envelope, original msg_signature
                params, body = safe_request(crypto, base, now, nonce=f"e{i}")
                mutated = mutate(rng, body)
                m = re.search(rb"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", mutated)
                if m and m.group(1) == re.search(rb"<Encrypt><!\[CDATA\[(.*?)\]\]>", body).group(1):
                    verified.add(base)                   # the signed part survived: a valid message
                body = mutated
            resp = await client.post("/webhooks/wechat", data=body, params=params)
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status < 500, (resp.status, body[:300])
            if must_refuse:
                assert resp.status == 401
    await ch.close()
    assert set(statuses) <= {200, 400, 401, 413} and sum(statuses.values()) == N
    assert statuses.get(401, 0) > 0 and statuses.get(400, 0) > 0 and statuses.get(200, 0) > 0
    async with sm() as session:
        stored = (await session.scalars(select(InboxItem.raw))).all()
    assert stored and all(raw in verified for raw in stored)


async def _no_fetch(media_id, mtype, started):
    from connectors.base import Attachment
    return Attachment(name=media_id, content_type="audio/amr", size=0, sha256="", data=None, note="not fetched")
