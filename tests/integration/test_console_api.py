"""The workflow through the JSON API of a running daemon: queues, actions, replies, tasks, dead letters,
and the OpenAPI document agreeing with the routes."""
from __future__ import annotations

import re
from datetime import timedelta

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from intake.daemon import Kesu
from models import AuditEvent, Complaint, InboxItem, LabelledExample, OutboxItem, utcnow
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
            agent, out[name] = await create_agent(s, name, role, dept, password="pw-" + name)
            out[name + "_id"] = agent.id
        await s.commit()
    return out


@pytest_asyncio.fixture
async def http(kesu):
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{kesu.http_port}") as session:
        yield session


def auth(token):
    return {"Authorization": f"Bearer {token}"}


BODY = {"channel": "phone", "customer": {"name": "王芳", "phone": "13812345678"}, "text": "快递寄丢了，一周都没有消息"}


async def register(http, token, **extra) -> str:
    async with http.post("/api/complaints", json={**BODY, **extra}, headers=auth(token)) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["number"]


async def test_possible_p0s_come_first_in_the_review_queue(http, tokens):
    amy = auth(tokens["amy"])
    unsure = await register(http, tokens["amy"])                     # a confident P2
    watched = await register(http, tokens["amy"], text="快递刚送到的充电宝在冒烟")
    async with http.get("/api/queues/review", headers=amy) as r:
        items = (await r.json())["items"]
    assert [i["number"] for i in items] == [watched, unsure]
    assert items[0]["p0_watch"] and items[0]["urgency"] == "P1" and not items[1]["p0_watch"]
    # Once an agent has looked, it is no longer a possible P0.
    async with http.post(f"/api/complaints/{watched}/review", json={"category": "logistics", "urgency": "P0"},
                         headers=amy) as r:
        assert r.status == 200
    async with http.get(f"/api/complaints/{watched}", headers=amy) as r:
        body = await r.json()
    assert body["urgency"] == "P0" and not body["p0_watch"] and not body["needs_review"]


async def test_the_loop_through_the_api(http, tokens, kesu):
    amy, sue = auth(tokens["amy"]), auth(tokens["sue"])
    number = await register(http, tokens["amy"])
    async with http.get("/api/queues/review", headers=amy) as r:
        items = (await r.json())["items"]
    assert [i["number"] for i in items] == [number] and items[0]["reasons"] == ["快递"]
    async with http.post(f"/api/complaints/{number}/review", json={"category": "logistics", "urgency": "P1"},
                         headers=amy) as r:
        assert r.status == 200
    async with http.get("/api/queues/review", headers=amy) as r:
        assert (await r.json())["items"] == []
    async with http.post(f"/api/complaints/{number}/actions/assign", headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "assigned"
    plan = {"measures": [{"kind": "compensation", "amount": "20"}, {"kind": "apology"}],
            "deadline": (utcnow() + timedelta(days=1)).isoformat()}
    async with http.post(f"/api/complaints/{number}/actions/draft_plan", json=plan, headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "in_progress"
    async with http.post(f"/api/complaints/{number}/actions/resolve", json={"result": "已补偿"}, headers=amy) as r:
        assert r.status == 409 and "approved" in (await r.json())["error"]
    async with http.post(f"/api/complaints/{number}/actions/approve_plan", json={"note": "同意"}, headers=sue) as r:
        assert r.status == 200
    async with http.post(f"/api/complaints/{number}/replies", json={"text": "已电话联系客户"}, headers=amy) as r:
        assert r.status == 201
    async with http.post(f"/api/complaints/{number}/actions/resolve", json={"result": "已补偿20元"}, headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "resolved"
    async with http.get("/api/tasks", headers=amy) as r:
        tasks = (await r.json())["tasks"]
    assert [t["kind"] for t in tasks] == ["call_customer"] and tasks[0]["number"] == number   # phone: call the result
    async with http.post(f"/api/tasks/{tasks[0]['id']}/done", json={"note": "已告知"}, headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "done"
    async with http.post(f"/api/complaints/{number}/actions/confirm", headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "confirmed"
    async with http.post(f"/api/complaints/{number}/actions/record_survey",
                         json={"efficiency": 2, "attitude": 4, "solution": 3}, headers=amy) as r:
        assert r.status == 200 and (await r.json())["status"] == "surveyed"
    async with http.get("/api/tasks", headers=sue) as r:
        callback = [t for t in (await r.json())["tasks"] if t["kind"] == "callback"]
    assert len(callback) == 1
    async with http.get("/api/tasks", headers=amy) as r:
        assert [t for t in (await r.json())["tasks"] if t["kind"] == "callback"] == []   # for supervisors
    async with http.post(f"/api/tasks/{callback[0]['id']}/done", json={"note": "已回电"}, headers=sue) as r:
        assert r.status == 200
    async with http.get(f"/api/complaints/{number}/workflow", headers=amy) as r:
        page = await r.json()
    assert page["status"] == "closed" and page["plans"][0]["status"] == "approved"
    assert page["sla"]["response_target_minutes"] == 240
    assert [m["kind"] for m in page["messages"]] == ["message", "call_note"]
    actions = [e["action"] for e in page["audit"]]
    assert actions[:3] == ["registered", "corrected", "assign"] and actions[-1] == "close"
    async with http.get(f"/api/complaints/{number}/audit", headers=amy) as r:
        assert [e["action"] for e in (await r.json())["events"]] == actions
    async with kesu.runtime.sessionmaker() as s:
        ex = await s.scalar(select(LabelledExample))
        assert (ex.urgency, ex.suggested_urgency, ex.agent_id) == ("P1", "P2", tokens["amy_id"])


async def test_refusals_have_reasons_and_statuses(http, tokens):
    number = await register(http, tokens["amy"])
    amy, bob = auth(tokens["amy"]), auth(tokens["bob"])
    async with http.post(f"/api/complaints/{number}/actions/close", headers=amy) as r:
        assert r.status == 409 and "cannot close" in (await r.json())["error"]
    async with http.post(f"/api/complaints/{number}/actions/fly", headers=amy) as r:
        assert r.status == 400 and (await r.json())["field"] == "action"
    async with http.post(f"/api/complaints/{number}/actions/assign", headers=bob) as r:
        assert r.status == 403
    async with http.post(f"/api/complaints/{number}/actions/assign", json={"assignee_id": "me"}, headers=amy) as r:
        assert r.status == 400 and (await r.json())["field"] == "assignee_id"
    async with http.post(f"/api/complaints/{number}/actions/assign", headers=amy) as r:
        assert r.status == 200
    async with http.post(f"/api/complaints/{number}/actions/draft_plan", json={"measures": []}, headers=amy) as r:
        assert r.status == 400 and (await r.json())["field"] == "measures"
    async with http.get("/api/queues/nope", headers=amy) as r:
        assert r.status == 404
    async with http.get("/api/dead-letters", headers=amy) as r:
        assert r.status == 403


async def test_at_risk_queue_sorted_by_time_left_and_disputed(http, tokens, kesu):
    p2 = await register(http, tokens["amy"])
    p0 = await register(http, tokens["amy"], text="吃了以后中毒住院了")
    async with http.get("/api/queues/at-risk", headers=auth(tokens["max"])) as r:
        items = (await r.json())["items"]
    assert [i["number"] for i in items] == [p0, p2]
    assert items[0]["seconds_left"] < items[1]["seconds_left"]
    async with http.get("/api/queues/disputed", headers=auth(tokens["max"])) as r:
        assert (await r.json())["items"] == []


async def test_dead_letters_retry_and_discard_are_audited(http, tokens, kesu):
    number = await register(http, tokens["amy"])
    async with kesu.runtime.sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        s.add(OutboxItem(channel="email", kind="reply", complaint_id=c.id, reply_to={"address": "x@example.com"},
                         payload={"text": "hi"}, dedupe_key="dead-1", status="dead", attempts=8,
                         last_error="permanent: 550 no such user"))
        s.add(InboxItem(channel="email", external_id="bad-1", kind="message", status="quarantined",
                        message={"text": "联系我 13812345678"}, received_at=utcnow(), last_error="no text", trace=[]))
        await s.commit()
    sue = auth(tokens["sue"])
    async with http.get("/api/dead-letters", headers=sue) as r:
        data = await r.json()
    assert [o["error"] for o in data["outbox"]] == ["permanent: 550 no such user"]
    assert data["inbox"][0]["preview"] == "联系我 138****5678"
    oid, iid = data["outbox"][0]["id"], data["inbox"][0]["id"]
    async with http.post(f"/api/outbox/{oid}/retry", headers=sue) as r:
        assert r.status == 200 and (await r.json())["status"] == "pending"
    async with http.post(f"/api/outbox/{oid}/retry", headers=sue) as r:
        assert r.status == 409
    async with http.post(f"/api/inbox/{iid}/discard", headers=auth(tokens["max"])) as r:
        assert r.status == 200 and (await r.json())["status"] == "discarded"
    async with kesu.runtime.sessionmaker() as s:
        actions = (await s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("%box_%"))
                                   .order_by(AuditEvent.id))).all()
    assert actions == ["outbox_retry", "inbox_discard"]


def _app_routes(kesu) -> set[tuple[str, str]]:
    app = kesu._runner.app
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and (path.startswith("/api/") or path == "/healthz") and route.method not in ("HEAD", "OPTIONS"):
            out.add((route.method.lower(), re.sub(r"{(\w+)(:[^}]*)?}", r"{\1}", path)))
    return out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_openapi_document_matches_the_routes(http, kesu):
    async with http.get("/api/openapi.json") as r:
        assert r.status == 200
        doc = await r.json()
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == _app_routes(kesu)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert {p["name"] for p in op["parameters"]} == set(re.findall(r"{(\w+)}", path))
