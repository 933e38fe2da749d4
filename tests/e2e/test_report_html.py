"""The monthly report in a real browser: the HTML report rendered by headless Chromium (screenshot
kept as artifacts/report-2026-10.png), and the console's reports page with its download buttons."""
from __future__ import annotations

import asyncio
import io
from datetime import datetime

import pytest_asyncio
from sqlalchemy import delete, func, select

from intake.daemon import Kesu
from models import MonthlyReport
from tests.conftest import daemon_settings
from tests.e2e.browser import browser, page, save_artifact  # noqa: F401  (fixtures)
from tests.fakes import KeywordClassifier
from openpyxl import load_workbook

from tests.integration.test_report_figures import BJ, SECRET_NAME, SECRET_PHONE, seed_fixed_month
from tests.integration.test_report_spikes import seed_series
from workflow.spikes import check_day
from workflow.agents import create_agent


@pytest_asyncio.fixture
async def served(sqlite_url, tmp_path):
    settings = daemon_settings(sqlite_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as k:
        await forget_the_report_kept_at_start(k)
        async with k.runtime.sessionmaker() as s:
            await seed_fixed_month(s)
            _, token = await create_agent(s, "max", "manager", None, password="pw-max")
            await s.commit()
        yield f"http://127.0.0.1:{k.http_port}", token, k


async def forget_the_report_kept_at_start(kesu) -> None:
    """The daemon keeps last month's report when it starts; these tests make their own."""
    for _ in range(300):
        async with kesu.runtime.sessionmaker() as s:
            if await s.scalar(select(func.count()).select_from(MonthlyReport)):
                await s.execute(delete(MonthlyReport))
                await s.commit()
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not keep last month's report at start")


async def test_html_report_renders_in_chromium_with_its_charts(served, page):
    base, token, _ = served
    await page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    response = await page.goto(f"{base}/api/reports/2026-10?format=html", wait_until="load")
    assert response.status == 200
    assert await page.title() == "2026-10 月度投诉报告"
    charts = await page.eval_on_selector_all(
        "img.chart", "imgs => imgs.map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight, ok: i.complete}))")
    assert [c["alt"] for c in charts] == ["每日投诉量", "投诉分类构成", "各紧急程度及时率", "满意度评分分布"]
    assert all(c["ok"] and c["w"] > 400 and c["h"] > 200 for c in charts)
    assert (await page.inner_text("#total .v")) == "8"
    rows = await page.eval_on_selector_all("#longest-open tr td:first-child", "tds => tds.map(t => t.textContent)")
    assert rows == ["T-K3", "T-K5", "T-K6", "T-K7"]
    body = await page.inner_text("body")
    assert "客户投诉退货月统计表" in body and SECRET_NAME not in body and SECRET_PHONE not in body
    shot = await save_artifact(page, "report-2026-10.png", full_page=True)
    assert shot.stat().st_size > 50_000
    assert page.errors == []


async def test_reports_page_downloads_keeps_and_acknowledges(served, page):
    base, _, kesu = served
    async with kesu.runtime.sessionmaker() as s:
        await seed_series(s)                                         # a batch problem on 2026-10-29
        await check_day(s, datetime(2026, 10, 29, tzinfo=BJ).date())
        await s.commit()
    await page.goto(base + "/login")
    await page.fill("input[name=name]", "max")
    await page.fill("input[name=password]", "pw-max")
    await page.click("form.login button")
    await page.goto(base + "/console/reports?month=2026-10")
    assert "未存档" in await page.inner_text("#month-report h2")
    async with page.expect_download() as info:
        await page.click("#month-report a.download >> text=下载 Excel")
    download = await info.value
    wb = load_workbook(io.BytesIO(open(await download.path(), "rb").read()))
    api = await (await page.request.get(base + "/api/reports/2026-10")).json()      # same console session
    assert wb["概览"]["B4"].value == api["volume"]["total"] > 8
    assert download.suggested_filename == "kesu-report-2026-10.xlsx"
    await page.click("#month-report button")                       # make and keep it
    assert "已生成并存档" in await page.inner_text(".flash")
    assert await page.inner_text("#kept-reports tr[data-month='2026-10'] td:first-child") == "2026-10"
    rows = page.locator("#alerts tbody tr")
    assert await rows.count() == 2                                  # 2026-10-29: category and product
    await rows.first.locator("button").click()
    assert "预警已确认" in await page.inner_text(".flash")
    assert "已确认" in await page.locator("#alerts tbody tr").first.inner_text()
    await save_artifact(page, "reports-page.png", full_page=True)
    assert page.errors == []
