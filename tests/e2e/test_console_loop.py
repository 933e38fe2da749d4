"""The closed loop in real headless Chromium: a customer complains in the chat widget, an agent
reviews and corrects it in the console, drafts a plan, a supervisor approves it, the agent
resolves; the customer sees the result live, confirms and rates 2 of 5, and a call-back task
appears for the supervisor. An agent of another department gets 403 on the complaint."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import select

from intake.daemon import Kesu
from models import Complaint, SurveyResponse, WorkTask, utcnow
from tests.conftest import daemon_settings
from tests.e2e.browser import browser, new_page, page, save_artifact  # noqa: F401  (fixtures)
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent
from workflow.calendar import SHANGHAI

NUMBER = re.compile(r"\d{8}-[A-Z]{2,8}-\d{4}")
COMPLAINT = "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，希望换货"
WAIT = 20_000   # ms: generous on two shared cores


@pytest_asyncio.fixture
async def kesu(sqlite_url, tmp_path):
    settings = daemon_settings(sqlite_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as daemon:
        daemon.url = f"http://127.0.0.1:{daemon.http_port}"
        async with daemon.runtime.sessionmaker() as s:
            for name, role, dept in (("amy", "agent", "LG"), ("sue", "supervisor", "LG"), ("bob", "agent", "FN")):
                await create_agent(s, name, role, dept, password="pw-" + name)
            await s.commit()
        yield daemon


async def say(widget, text: str) -> None:
    box = widget.locator(".composer textarea")
    await box.fill(text)
    await box.press("Enter")


async def bot_says(widget, pattern: str) -> None:
    await widget.locator(".log .msg .bubble", has_text=re.compile(pattern)).last.wait_for(timeout=WAIT)


async def log_in(console, url: str, name: str) -> None:
    await console.goto(url + "/login")
    await console.fill("input[name=name]", name)
    await console.fill("input[name=password]", "pw-" + name)
    await console.click("form.login button")
    await console.wait_for_url(re.compile(r"/console/"), timeout=WAIT)


async def test_complaint_through_the_closed_loop(page, browser, kesu):  # noqa: F811
    widget, url = page, kesu.url
    # 1. the customer complains in the chat widget
    await widget.goto(url + "/")
    await widget.locator(".launcher").click()
    await widget.locator(".log .msg.from-bot").first.wait_for(timeout=WAIT)
    await say(widget, COMPLAINT)
    await bot_says(widget, "请确认以下信息")
    await widget.locator(".options button", has_text="确认").click()
    await bot_says(widget, "已为您登记投诉，编号")
    number = NUMBER.search(await widget.locator(".log").inner_text()).group(0)

    # 2. the agent finds it in "needs review", with the terms behind the suggestion, and corrects it
    agent = await new_page(browser)
    await log_in(agent, url, "amy")
    await agent.goto(url + "/console/queues/review")
    row = agent.locator(f"tr[data-number='{number}']")
    await row.wait_for(timeout=WAIT)
    assert await row.locator(".term").count() >= 1
    await row.locator("select[name=category]").select_option("product_quality")
    assert (await row.locator("button").inner_text()).strip() == "更正"
    await row.locator("button").click()
    await agent.locator(".flash", has_text="已审核").wait_for(timeout=WAIT)
    assert await agent.locator(f"tr[data-number='{number}']").count() == 0

    # 3. takes it and drafts a plan
    await agent.goto(f"{url}/console/complaints/{number}")
    assert await agent.locator("#category").get_attribute("data-category") == "product_quality"
    await agent.locator("form[data-action=assign] button").click()
    await agent.locator("#status[data-status=assigned]").wait_for(timeout=WAIT)
    plan = agent.locator("#plan-form")
    await plan.locator("input[value=replacement]").check()
    await plan.locator("input[name=detail_replacement]").fill("上门更换同型号冰箱")
    deadline = (utcnow() + timedelta(days=2)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    await plan.locator("input[name=deadline]").fill(deadline)
    await plan.locator("button").click()
    await agent.locator(".plan[data-plan-status=draft]").wait_for(timeout=WAIT)

    # 4. the supervisor approves it
    supervisor = await new_page(browser)
    await log_in(supervisor, url, "sue")
    await supervisor.goto(f"{url}/console/complaints/{number}")
    await supervisor.locator("form[data-action=approve_plan] button").click()
    await supervisor.locator(".plan[data-plan-status=approved]").wait_for(timeout=WAIT)

    # 5. the agent resolves; the customer sees the result live in the widget
    await agent.reload()
    await agent.locator("form[data-action=resolve] textarea").fill("已为您安排上门更换冰箱，明天送达。")
    await agent.locator("form[data-action=resolve] button").click()
    await agent.locator("#status[data-status=resolved]").wait_for(timeout=WAIT)
    await bot_says(widget, "已为您安排上门更换冰箱")

    # 6. the customer confirms (a reply added to the complaint) and rates 2 of 5
    await say(widget, f"补充 {number} 1 确认已解决")
    await bot_says(widget, "请为本次处理打分")
    await widget.locator(".options button", has_text="2").click()
    await bot_says(widget, "感谢您的评价")

    # 7. a call-back task appears for the supervisor
    await supervisor.goto(url + "/console/tasks")
    task = supervisor.locator("tr[data-kind=callback]", has_text=number)
    await task.wait_for(timeout=WAIT)
    assert "评分偏低" in await task.inner_text()
    async with kesu.runtime.sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        assert c.status == "surveyed"
        survey = await s.scalar(select(SurveyResponse).where(SurveyResponse.complaint_id == c.id))
        assert (survey.efficiency, survey.attitude, survey.solution) == (2, 2, 2)
        assert await s.scalar(select(WorkTask.role).where(WorkTask.complaint_id == c.id,
                                                          WorkTask.kind == "callback")) == "supervisor"

    # 8. an agent of another department cannot open the complaint
    other = await new_page(browser)
    await log_in(other, url, "bob")
    response = await other.goto(f"{url}/console/complaints/{number}")
    assert response.status == 403

    await save_artifact(supervisor, "console/callback-task.png", full_page=True)
    assert all("403" in e for e in other.errors)      # the refused page itself, nothing else
    for p in (agent, supervisor):
        assert p.errors == [], p.errors               # no script errors, no CSP violations
    for p in (agent, supervisor, other):
        await p.context.close()
