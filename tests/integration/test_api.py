"""The JSON API through a running daemon (real HTTP on loopback), on both engines."""
from __future__ import annotations

import re

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from intake.daemon import Kesu
from models import Complaint, InboxItem, LabelledExample
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent


@pytest_asyncio.fixture
async def kesu(db_url, tmp_path):
    settings = daemon_settings(db_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as k:
        yield k


@pytest_asyncio.fixture
async def tokens(kesu):
    out = {}
    async with kesu.runtime.sessionmaker() as s:
        for name, role, dept in (("amy", "agent", "LG"), ("bob", "agent", "FN"), ("sue", "supervisor", "LG"),
                                 ("max", "manager", None)):
            _, out[name] = await create_agent(s, name, role, dept, password="pw-amy" if name == "amy" else None)
        await s.commit()
    return out


@pytest_asyncio.fixture
async def http(kesu):
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{kesu.http_port}") as session:
        yield session


def auth(token):
    return {"Authorization": f"Bearer {token}"}


BODY = {"channel": "phone", "customer": {"name": "王芳", "phone": "13812345678", "email": "wf@example.com",
                                         "region": "上海"},
        "text": "快递寄丢了，一周都没有消息", "product": "电饭煲", "order_no": "A100"}


async def test_healthz(http):
    async with http.get("/healthz") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"


async def test_register_phone_complaint(http, tokens, kesu):
    async with http.post("/api/complaints", json=BODY, headers=auth(tokens["amy"])) as r:
        assert r.status == 201, await r.text()
        data = await r.json()
    assert re.fullmatch(r"\d{8}-LG-0001", data["number"])
    assert data["category"] == "logistics" and data["urgency"] == "P2" and data["department"] == "LG"
    assert data["status"] == "registered" and data["response_due"] and data["resolve_due"]
    assert 0 <= data["category_confidence"] <= 1
    async with http.get(f"/api/complaints/{data['number']}", headers=auth(tokens["amy"])) as r:
        detail = await r.json()
    assert detail["product"] == "电饭煲" and detail["order_no"] == "A100" and detail["region"] == "上海"
    assert detail["customer"]["phone"] == "13812345678"          # the handling department sees contacts
    async with http.get(f"/api/complaints/{data['number']}", headers=auth(tokens["max"])) as r:
        masked = await r.json()
    assert masked["customer"]["phone"] == "138****5678" and masked["customer"]["email"] == "w***@example.com"


async def test_idempotency_key_registers_once(http, tokens):
    headers = {**auth(tokens["amy"]), "Idempotency-Key": "call-42"}
    async with http.post("/api/complaints", json=BODY, headers=headers) as r1:
        first = await r1.json()
    async with http.post("/api/complaints", json=BODY, headers=headers) as r2:
        second = await r2.json()
    assert first["number"] == second["number"]


@pytest.mark.parametrize("body, field", [
    ({**BODY, "text": ""}, "text"),
    ({k: v for k, v in BODY.items() if k != "text"}, "text"),
    ({**BODY, "text": "长" * 20_001}, "text"),
    ({**BODY, "channel": "fax"}, "channel"),
    ({**BODY, "customer": {"phone": "call me"}}, "customer.phone"),
    ({**BODY, "customer": {"email": "nobody"}}, "customer.email"),
    ({**BODY, "customer": "王芳"}, "customer"),
])
async def test_bad_input_is_refused_and_writes_nothing(http, tokens, kesu, body, field):
    async with http.post("/api/complaints", json=body, headers=auth(tokens["amy"])) as r:
        assert r.status == 400
        data = await r.json()
    assert data["field"] == field and data["error"]
    async with kesu.runtime.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 0


async def test_invalid_json_and_missing_or_wrong_token(http, tokens, kesu):
    async with http.post("/api/complaints", data=b"{not json", headers=auth(tokens["amy"])) as r:
        assert r.status == 400 and "JSON" in (await r.json())["error"]
    async with http.post("/api/complaints", json=BODY) as r:
        assert r.status == 401 and "bearer" in (await r.json())["error"]
    async with http.post("/api/complaints", json=BODY, headers=auth("kesu_forged")) as r:
        assert r.status == 401
    async with kesu.runtime.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 0


async def test_list_filters_and_department_scope(http, tokens):
    for text in ("快递寄丢了", "退款还没到账", "快递员态度差把包裹扔门口"):
        async with http.post("/api/complaints", json={**BODY, "text": text}, headers=auth(tokens["max"])) as r:
            assert r.status == 201
    async with http.get("/api/complaints", headers=auth(tokens["max"])) as r:
        assert (await r.json())["total"] == 3
    async with http.get("/api/complaints?department=FN", headers=auth(tokens["max"])) as r:
        items = (await r.json())["items"]
    assert [i["category"] for i in items] == ["price_refund"]
    async with http.get("/api/complaints", headers=auth(tokens["bob"])) as r:
        assert {i["department"] for i in (await r.json())["items"]} == {"FN"}
    async with http.get("/api/complaints?urgency=P1&status=registered", headers=auth(tokens["max"])) as r:
        assert (await r.json())["total"] == 1
    lg_number = items and None
    async with http.get("/api/complaints?department=LG", headers=auth(tokens["max"])) as r:
        lg_number = (await r.json())["items"][0]["number"]
    async with http.get(f"/api/complaints/{lg_number}", headers=auth(tokens["bob"])) as r:
        assert r.status == 403
    async with http.get("/api/complaints/20990101-XX-0001", headers=auth(tokens["max"])) as r:
        assert r.status == 404


async def test_review_stores_training_example_and_recomputes_deadlines(http, tokens, kesu):
    async with http.post("/api/complaints", json=BODY, headers=auth(tokens["amy"])) as r:
        number = (await r.json())["number"]
    async with http.post(f"/api/complaints/{number}/review", json={"category": "logistics", "urgency": "P0"},
                         headers=auth(tokens["sue"])) as r:
        assert r.status == 200
        data = await r.json()
    assert data["urgency"] == "P0" and data["reviewed"] is True
    async with kesu.runtime.sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        assert (c.response_due - c.received_at).total_seconds() == 2 * 3600
        ex = await s.scalar(select(LabelledExample))
        assert (ex.category, ex.urgency, ex.suggested_urgency) == ("logistics", "P0", "P2")
        assert ex.text == BODY["text"]
    async with http.post(f"/api/complaints/{number}/review", json={"category": "nope", "urgency": "P0"},
                         headers=auth(tokens["sue"])) as r:
        assert r.status == 400 and (await r.json())["field"] == "category"


async def test_token_login(http, tokens):
    async with http.post("/api/tokens", json={"name": "amy", "password": "wrong"}) as r:
        assert r.status == 401
    async with http.post("/api/tokens", json={"name": "amy", "password": "pw-amy"}) as r:
        token = (await r.json())["token"]
    async with http.get("/api/complaints", headers=auth(token)) as r:
        assert r.status == 200
