"""The console's pages over HTTP: login, sessions and CSRF, escaping, department scope, forms, the survey link."""
from __future__ import annotations

import re
from datetime import timedelta

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from intake.daemon import Kesu
from models import Complaint, ConsoleSession, SurveyResponse, utcnow
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent
from workflow.surveys import make_token

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest_asyncio.fixture
async def kesu(db_url, tmp_path):
    settings = daemon_settings(db_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as k:
        async with k.runtime.sessionmaker() as s:
            for name, role, dept in (("amy", "agent", "LG"), ("bob", "agent", "FN"), ("sue", "supervisor", "LG")):
                await create_agent(s, name, role, dept, password="pw-" + name)
            await s.commit()
        yield k


def client(kesu) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=f"http://127.0.0.1:{kesu.http_port}",
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http, name) -> str:
    """Log in through the form; returns the page's CSRF token."""
    async with http.get("/login") as r:
        token = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
    async with http.post("/login", data={"csrf": token, "name": name, "password": "pw-" + name, "next": "/console/"},
                         allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    async with http.get("/console/tasks") as r:
        assert r.status == 200
        return re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)


async def register(kesu, text) -> str:
    async with client(kesu) as http:
        async with http.post("/api/tokens", json={"name": "amy", "password": "pw-amy"}) as r:
            token = (await r.json())["token"]
        async with http.post("/api/complaints", json={"channel": "phone", "text": text},
                             headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 201
            return (await r.json())["number"]


async def test_pages_need_a_login_and_a_wrong_password_is_refused(kesu):
    async with client(kesu) as http:
        async with http.get("/console/queues/review", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login?next=")
        async with http.get("/login") as r:
            token = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        async with http.post("/login", data={"csrf": token, "name": "amy", "password": "nope"}) as r:
            assert r.status == 401 and "用户名或密码错误" in await r.text()


async def test_login_without_the_form_token_is_refused(kesu):
    async with client(kesu) as http:
        async with http.post("/login", data={"name": "amy", "password": "pw-amy"}, allow_redirects=False) as r:
            assert r.status == 403


async def test_session_fixation_is_prevented(kesu):
    async with client(kesu) as http:
        # an attacker plants a session id in the victim's browser before login
        planted = "attacker-chosen-session-id"
        http.cookie_jar.update_cookies({"kesu_session": planted})
        await login(http, "amy")
        issued = {c.key: c.value for c in http.cookie_jar}["kesu_session"]
        assert issued != planted
    async with client(kesu) as attacker:
        attacker.cookie_jar.update_cookies({"kesu_session": planted})
        async with attacker.get("/console/tasks", allow_redirects=False) as r:
            assert r.status == 303
    # an old session of the same browser is revoked at the next login
    async with client(kesu) as http:
        await login(http, "amy")
        first = {c.key: c.value for c in http.cookie_jar}["kesu_session"]
        await login(http, "sue")
        async with client(kesu) as thief:
            thief.cookie_jar.update_cookies({"kesu_session": first})
            async with thief.get("/console/tasks", allow_redirects=False) as r:
                assert r.status == 303
    async with kesu.runtime.sessionmaker() as s:
        rows = (await s.scalars(select(ConsoleSession))).all()
        assert all(len(r.token_hash) == 64 for r in rows) and first not in {r.token_hash for r in rows}


async def test_post_without_csrf_token_is_refused(kesu):
    number = await register(kesu, "快递丢了")
    async with client(kesu) as http:
        csrf = await login(http, "amy")
        form = {"category": "logistics", "urgency": "P0"}
        async with http.post(f"/console/complaints/{number}/review", data=form, allow_redirects=False) as r:
            assert r.status == 403
        async with http.post(f"/console/complaints/{number}/review", data={**form, "csrf": "forged"},
                             allow_redirects=False) as r:
            assert r.status == 403
        # the JSON API with the session cookie needs the header too
        async with http.post(f"/api/complaints/{number}/review", json=form) as r:
            assert r.status == 403 and "CSRF" in (await r.json())["error"]
        async with kesu.runtime.sessionmaker() as s:
            assert (await s.scalar(select(Complaint.urgency).where(Complaint.number == number))) == "P2"
        async with http.post(f"/api/complaints/{number}/review", json=form, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200 and (await r.json())["urgency"] == "P0"
        async with http.post(f"/console/complaints/{number}/review", data={**form, "csrf": csrf},
                             allow_redirects=False) as r:
            assert r.status == 303


async def test_xss_in_complaint_text_is_shown_as_text(kesu):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>快递丢了'
    number = await register(kesu, payload)
    async with client(kesu) as http:
        await login(http, "amy")
        for path in (f"/console/complaints/{number}", "/console/queues/review"):
            async with http.get(path) as r:
                html = await r.text()
            assert "<script>alert" not in html and "<img src=x" not in html
        async with http.get(f"/console/complaints/{number}") as r:
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in await r.text()


async def test_a_possible_p0_is_marked_in_the_queue_and_on_its_page(kesu):
    plain = await register(kesu, "快递丢了")
    watched = await register(kesu, "快递刚送到的充电宝在冒烟")
    async with client(kesu) as http:
        await login(http, "amy")
        async with http.get("/console/queues/review") as r:
            html = await r.text()
        rows = re.findall(r'<tr data-number="([^"]+)">(.*?)</tr>', html, re.S)
        assert [n for n, _ in rows] == [watched, plain]
        assert "疑似P0" in rows[0][1] and "疑似P0" not in rows[1][1]
        async with http.get(f"/console/complaints/{watched}") as r:
            assert "疑似P0" in await r.text()


async def test_an_agent_of_another_department_cannot_open_or_act(kesu):
    number = await register(kesu, "快递丢了")          # logistics: LG
    async with client(kesu) as http:
        csrf = await login(http, "bob")                # FN
        async with http.get(f"/console/complaints/{number}") as r:
            assert r.status == 403 and number in await r.text()
        async with http.post(f"/console/complaints/{number}/actions/assign", data={"csrf": csrf}) as r:
            assert r.status == 403
        async with http.get("/console/queues/review") as r:
            assert number not in await r.text()


async def test_forms_take_the_complaint_through_plan_and_approval(kesu):
    number = await register(kesu, "快递丢了")
    async with client(kesu) as http:
        csrf = await login(http, "amy")
        async with http.post(f"/console/complaints/{number}/actions/assign", data={"csrf": csrf}) as r:
            assert "领取/分派 完成" in await r.text()
        deadline = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        form = aiohttp.FormData([("csrf", csrf), ("measure", "refund"), ("amount_refund", "30"),
                                 ("detail_refund", "退运费"), ("measure", "apology"), ("deadline", deadline)])
        async with http.post(f"/console/complaints/{number}/actions/draft_plan", data=form) as r:
            html = await r.text()
        assert 'data-plan-status="draft"' in html and "30.00 元" in html
        async with http.post(f"/console/complaints/{number}/actions/resolve", data={"csrf": csrf, "result": "x"}) as r:
            assert "approved before" in await r.text()
    async with client(kesu) as http:
        csrf = await login(http, "sue")
        async with http.get(f"/console/complaints/{number}") as r:
            plan_id = re.search(r'data-plan="(\d+)"', await r.text()).group(1)
        async with http.post(f"/console/complaints/{number}/actions/approve_plan",
                             data={"csrf": csrf, "plan_id": plan_id, "note": "同意"}) as r:
            assert 'data-plan-status="approved"' in await r.text()
        async with http.post("/console/logout", data={"csrf": csrf}, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get("/console/tasks", allow_redirects=False) as r:
            assert r.status == 303


async def test_survey_link_needs_no_login_and_records_once(kesu):
    number = await register(kesu, "快递丢了")
    async with kesu.runtime.sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        c.status = "confirmed"
        await s.commit()
    token = make_token(c.id, utcnow())
    async with client(kesu) as http:
        async with http.get(f"/survey/{token}") as r:
            assert r.status == 200 and number in await r.text()
        forged = token[:-1] + ("1" if token.endswith("0") else "0")   # always a different signature
        async with http.get(f"/survey/{forged}") as r:
            assert r.status == 404
        async with http.post(f"/survey/{token}", data={"efficiency": "5", "attitude": "5", "solution": "4",
                                                       "comment": "<b>好</b>"}) as r:
            assert r.status == 200 and "感谢" in await r.text()
        async with http.post(f"/survey/{token}", data={"efficiency": "1", "attitude": "1", "solution": "1"}) as r:
            assert r.status == 400
    async with kesu.runtime.sessionmaker() as s:
        rows = (await s.scalars(select(SurveyResponse))).all()
        assert [(r.efficiency, r.comment) for r in rows] == [(5, "<b>好</b>")]
        assert await s.scalar(select(Complaint.status).where(Complaint.id == c.id)) == "closed"
