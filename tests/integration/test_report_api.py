"""The monthly report through a running daemon's API: JSON, Excel (opened back with openpyxl) and
HTML; roles; kept reports and notices; spike alerts."""
from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import datetime

import aiohttp
import pytest_asyncio
from openpyxl import load_workbook

from intake.daemon import Kesu
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from tests.integration.test_report_figures import (SECRET_NAME, SECRET_PHONE, SECRET_TEXT, bj,
                                                   seed_fixed_month)
from tests.integration.test_report_spikes import seed_series
from workflow.agents import create_agent
from workflow.spikes import run_spike_check

PERSONAL = (SECRET_NAME, SECRET_PHONE, SECRET_TEXT, "zhang@example.com", "ORD-1")


@pytest_asyncio.fixture
async def kesu(sqlite_url, tmp_path):
    settings = daemon_settings(sqlite_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as k:
        async with k.runtime.sessionmaker() as s:
            await seed_fixed_month(s)
            await s.commit()
        yield k


@pytest_asyncio.fixture
async def tokens(kesu):
    out = {}
    async with kesu.runtime.sessionmaker() as s:
        for name, role, dept in (("amy", "agent", "QA"), ("sue", "supervisor", "QA"), ("max", "manager", None)):
            _, out[name] = await create_agent(s, name, role, dept)
        await s.commit()
    return out


@pytest_asyncio.fixture
async def http(kesu):
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{kesu.http_port}") as session:
        yield session


def auth(token):
    return {"Authorization": f"Bearer {token}"}


async def test_json_report_for_a_manager(http, tokens):
    async with http.get("/api/reports/2026-10", headers=auth(tokens["max"])) as r:
        assert r.status == 200
        figures = await r.json()
    assert figures["volume"] == {"total": 8, "previous_total": 3, "change": 5, "change_rate": 1.6667}
    assert figures["rates"]["repeat"] == {"count": 1, "rate": 0.125}


async def test_reports_need_a_manager(http, tokens):
    for who in ("amy", "sue"):
        async with http.get("/api/reports/2026-10", headers=auth(tokens[who])) as r:
            assert r.status == 403
    async with http.get("/api/reports/2026-10") as r:
        assert r.status == 401


async def test_bad_month_and_format_are_refused(http, tokens):
    for url in ("/api/reports/2026-13", "/api/reports/october", "/api/reports/2999-01",
                "/api/reports/2026-10?format=pdf"):
        async with http.get(url, headers=auth(tokens["max"])) as r:
            assert r.status == 400, url


async def test_xlsx_download_opens_with_sheets_headers_figures_and_charts(http, tokens):
    async with http.get("/api/reports/2026-10?format=xlsx", headers=auth(tokens["max"])) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        assert "attachment" in r.headers["Content-Disposition"]
        body = await r.read()
    wb = load_workbook(io.BytesIO(body))
    assert {"概览", "每日投诉量", "投诉分类分布", "紧急程度分布", "受理渠道分布", "地区分布", "产品分布", "责任部门分布",
            "及时率", "满意度", "客户投诉退货月统计表", "投诉量前十产品", "未结时间最长投诉"} <= set(wb.sheetnames)
    summary = {row[0]: row[1] for row in wb["概览"].iter_rows(min_row=2, values_only=True)}
    assert summary["投诉总量（件）"] == 8 and summary["上月投诉量（件）"] == 3
    assert summary["涉及金额（元）"] == 468.0
    assert [c.value for c in wb["及时率"][1]][:5] == ["紧急程度", "应响应数", "及时响应数", "超时未响应数", "首次响应及时率"]
    daily = list(wb["每日投诉量"].iter_rows(min_row=2, values_only=True))
    assert len(daily) == 31 and daily[0] == ("2026-10-01", 2)
    returns = list(wb["客户投诉退货月统计表"].iter_rows(values_only=True))
    assert returns[0][:4] == ("产品", "涉及投诉数", "退款笔数", "退款金额（元）")
    assert returns[1][:6] == ("水壶A", 3, 2, 249.0, 1, 199.0)
    top = list(wb["投诉量前十产品"].iter_rows(min_row=2, values_only=True))
    assert top == [(1, "水壶A", 4, 0.5, 2), (2, "保温杯B", 2, 0.25, 0)]
    charts = [n for n in zipfile.ZipFile(io.BytesIO(body)).namelist() if re.match(r"xl/charts/chart\d+\.xml", n)]
    assert len(charts) == 4     # daily volume, categories, on-time per urgency, satisfaction
    everything = " ".join(str(c) for ws in wb for row in ws.iter_rows(values_only=True) for c in row)
    assert not [p for p in PERSONAL if p in everything]


async def test_html_report_has_the_four_charts_and_no_personal_data(http, tokens):
    async with http.get("/api/reports/2026-10?format=html", headers=auth(tokens["max"])) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        html = await r.text()
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 4
    assert all(base64.b64decode(p).startswith(b"\x89PNG") for p in pngs)
    assert "2026-10 月度投诉报告" in html and "客户投诉退货月统计表" in html and "T-K3" in html
    assert not [p for p in PERSONAL if p in html]


async def test_a_kept_report_is_served_and_managers_are_notified(http, tokens):
    async with http.post("/api/reports/2026-10", headers=auth(tokens["max"])) as r:
        assert r.status == 201 and (await r.json())["total"] == 8
    async with http.get("/api/reports", headers=auth(tokens["max"])) as r:
        kept = (await r.json())["reports"]
    assert [k["month"] for k in kept] == ["2026-10"]
    assert kept[0]["downloads"]["xlsx"] == "/api/reports/2026-10?format=xlsx"
    async with http.get("/api/notices", headers=auth(tokens["max"])) as r:
        notices = (await r.json())["notices"]
    assert [n["kind"] for n in notices] == ["monthly_report"] and "8 件" in notices[0]["body"]
    async with http.get("/api/notices", headers=auth(tokens["sue"])) as r:
        assert (await r.json())["notices"] == []


async def test_spike_alerts_for_supervisors(kesu, http, tokens):
    async with kesu.runtime.sessionmaker() as s:
        await seed_series(s)
        await run_spike_check(s, datetime(2026, 10, 30, 0, 10, tzinfo=bj(10, 1, 0).tzinfo))
        await s.commit()
    async with http.get("/api/alerts", headers=auth(tokens["amy"])) as r:
        assert r.status == 403
    async with http.get("/api/alerts?since=2026-10-29", headers=auth(tokens["sue"])) as r:
        alerts = (await r.json())["alerts"]
    kettle = next(a for a in alerts if a["day"] == "2026-10-29" and a["value"] == "水壶X")
    assert kettle["count"] == 9 and len(kettle["complaints"]) == 9
    async with http.post(f"/api/alerts/{kettle['id']}/ack", headers=auth(tokens["sue"])) as r:
        assert r.status == 200 and (await r.json())["acknowledged_at"]
    async with http.get("/api/notices", headers=auth(tokens["sue"])) as r:
        notices = (await r.json())["notices"]
    assert {n["kind"] for n in notices} == {"spike"} and len(notices) == len(alerts)
    assert json.dumps(alerts, ensure_ascii=False).count("S-") >= 9
