"""10 000 random or mutated bodies per webhook endpoint: never a 5xx, and nothing stored unless the
request verified. Bodies are deterministic (seeded) so a failure can be replayed."""
from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from connectors.webhook import WebhookChannel, signed_headers
from connectors.webhook import douyin, weibo
from intake.settings import WebhookSource
from models import InboxItem
from tests.wechat_stub import FakeIntake, migrated_sqlite_url, mutate, mutate_json, sqlite_sessionmaker

N = 10_000
CONCURRENCY = 1   # SQLite has one writer; parallel writers only wait on its lock
SECRETS = {"shop": "shop-secret", "weibo": "weibo-secret", "douyin": "douyin-secret"}
BASE = {"event_id": "evt-base", "sender": {"id": "u-1", "name": "李雷", "email": "li@example.com"},
        "text": "空调装好第二天就漏水", "created_at": "2026-11-23T09:00:00+08:00",
        "attachments": [{"name": "a.txt", "content_type": "text/plain", "data": "5ryP5rC0"}]}
WEIBO_BASE = {"type": "text", "receiver_id": "1902538057", "sender_id": "2489518277",
              "created_at": "Mon Jul 16 18:09:20 +0800 2012", "text": "私信或留言内容", "data": {}}
DOUYIN_BASE = {"event": "im_receive_msg", "from_user_id": "dy-1", "client_key": "k",
               "content": json.dumps({"message_type": "text", "text": "退款一直没到账"}, ensure_ascii=False)}


@pytest.fixture
def db(tmp_path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest_asyncio.fixture
async def sm(db):
    engine, sm = await sqlite_sessionmaker(db)
    yield sm
    await engine.dispose()


def build(source: str, rng: random.Random, i: int, now: int):
    """(method kwargs, signed_ok): a fuzzed request and whether it carries a valid signature for its body."""
    base_obj = {"shop": BASE, "weibo": WEIBO_BASE, "douyin": DOUYIN_BASE}[source]
    base = json.dumps(base_obj, ensure_ascii=False).encode()
    r = rng.random()
    body = (json.dumps(mutate_json(rng, base_obj), ensure_ascii=False).encode() if r < 0.25
            else mutate(rng, base))
    sign_for = body if rng.random() < 0.3 else base          # 30 %: correctly signed, so the parser is exercised
    secret = SECRETS[source]
    if source == "shop":
        headers = signed_headers(secret, sign_for, now)
        if rng.random() < 0.1:
            headers[rng.choice(["X-Kesu-Timestamp", "X-Kesu-Signature"])] = rng.choice(
                ["", "0", "sha256=", "sha256=" + "0" * 64, str(now - 301), "９９", "sha256=" + "é" * 64])
            sign_for = None
        return {"data": body, "headers": headers}, sign_for == body
    if source == "weibo":
        nonce = str(i)    # a fresh nonce each time: Weibo signs no body, so any body is "verified"
        ts = str(now)
        params = {"timestamp": ts, "nonce": nonce, "signature": weibo.signature(secret, ts, nonce)}
        ok = rng.random() < 0.9
        if not ok:
            params[rng.choice(["timestamp", "nonce", "signature"])] = rng.choice(["", "1", "abc", "0" * 40])
        return {"data": body, "params": params}, ok
    headers = {"X-Douyin-Signature": douyin.signature(secret, sign_for), "Msg-Id": f"msg-{i}"}
    return {"data": body, "headers": headers}, sign_for == body


@pytest.mark.parametrize("source", ["shop", "weibo", "douyin"])
async def test_fuzzed_bodies_never_5xx_and_nothing_unverified_is_stored(sm, source):
    intake = FakeIntake(sm, ready=False)
    ch = WebhookChannel({name: WebhookSource(name, s) for name, s in SECRETS.items()}, intake=intake,
                        attachment_limit=1 << 20, number_timeout=0)
    app = web.Application()
    ch.setup_routes(app)
    rng = random.Random(f"kesu-fuzz-{source}")
    now = int(time.time())
    statuses: dict[int, int] = {}
    verified_bodies: set[bytes] = set()
    refused_bodies: set[bytes] = set()
    async with TestClient(TestServer(app)) as client:
        async def one(i):
            kwargs, ok = build(source, rng, i, now)
            resp = await client.post(f"/webhooks/{source}", **kwargs)
            await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status < 500, (resp.status, kwargs["data"][:200])
            (verified_bodies if ok else refused_bodies).add(kwargs["data"])
            if not ok:
                assert resp.status == 401, (resp.status, kwargs)
        for start in range(0, N, CONCURRENCY):
            await asyncio.gather(*(one(i) for i in range(start, min(N, start + CONCURRENCY))))
    await ch.close()
    assert sum(statuses.values()) == N and set(statuses) <= {200, 400, 401, 413}
    assert statuses.get(401, 0) >= 1 and statuses.get(400, 0) >= 1
    async with sm() as session:
        stored = (await session.scalars(select(InboxItem.raw).where(InboxItem.channel == f"webhook:{source}"))).all()
    assert stored, "some correctly signed mutants are valid messages and must be stored"
    assert all(raw in verified_bodies for raw in stored)
    assert not (set(stored) & (refused_bodies - verified_bodies))
