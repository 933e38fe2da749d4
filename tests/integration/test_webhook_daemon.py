"""Signed webhooks through the running daemon (real pipeline and outbox) on both engines."""
from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from connectors.webhook import signed_headers, verify
from intake.daemon import Kesu
from intake.settings import Settings, WebhookSource
from models import Complaint, InboxItem, OutboxItem
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier

SECRET = "shop-secret-for-tests"
NUMBER = re.compile(r"\d{8}-[A-Z]{2}-\d{4}")


def settings_for(db_url, tmp_path, callback_url) -> Settings:
    return daemon_settings(db_url, tmp_path, worker_idle_seconds=0.05,
                    webhook_sources=(WebhookSource("shop", SECRET, callback_url),))


async def test_signed_event_three_times_is_one_complaint_answered_on_the_callback(db_url, tmp_path):
    delivered = []

    async def callback(request):
        body = await request.read()
        verify(SECRET, request.headers.get("X-Kesu-Timestamp"), request.headers.get("X-Kesu-Signature"), body,
               now=time.time())
        delivered.append(json.loads(body))
        return web.json_response({"id": f"cb-{len(delivered)}"})

    app = web.Application()
    app.router.add_post("/kesu-callback", callback)
    async with TestServer(app) as receiver, aiohttp.ClientSession() as http:
        settings = settings_for(db_url, tmp_path, str(receiver.make_url("/kesu-callback")))
        async with Kesu(settings, classifier=KeywordClassifier()) as kesu:
            url = f"http://127.0.0.1:{kesu.http_port}/webhooks/shop"
            body = json.dumps({"event_id": "order-778-c1", "sender": {"id": "u-9", "name": "赵敏",
                                                                      "email": "zhao@example.com"},
                               "text": "申请退款十天了还没到账", "created_at": "2026-11-23T09:30:00+08:00"},
                              ensure_ascii=False).encode()
            answers = []
            for _ in range(3):
                async with http.post(url, data=body, headers=signed_headers(SECRET, body)) as resp:
                    assert resp.status == 200
                    answers.append(await resp.json())
            assert [a["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
            numbers = {a["complaint"] for a in answers}
            assert len(numbers) == 1 and NUMBER.fullmatch(answers[0]["complaint"])

            async with http.post(url, data=body, headers={**signed_headers(SECRET, body),
                                                          "X-Kesu-Signature": "sha256=" + "0" * 64}) as resp:
                assert resp.status == 401 and "error" in await resp.json()

            for _ in range(200):
                async with kesu.runtime.sessionmaker() as s:
                    ack = await s.scalar(select(OutboxItem).where(OutboxItem.kind == "ack"))
                if ack is not None and ack.status not in ("pending", "sending"):
                    break
                await asyncio.sleep(0.05)
            assert (ack.status, ack.channel, ack.external_id) == ("sent", "webhook:shop", "cb-1")
            async with kesu.runtime.sessionmaker() as s:
                assert await s.scalar(select(func.count()).select_from(Complaint)) == 1
                assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1
    [sent] = delivered
    assert sent["complaint"] == answers[0]["complaint"] and sent["recipient"] == {"id": "u-9"}
    assert sent["in_reply_to"] == "order-778-c1" and sent["type"] == "ack" and answers[0]["complaint"] in sent["text"]
