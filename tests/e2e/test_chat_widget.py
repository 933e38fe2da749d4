"""The web chat widget in real headless Chromium against a running kesu daemon."""
from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest_asyncio
from sqlalchemy import func, select

from intake.daemon import Kesu
from models import ChatMessage, Complaint
from tests.conftest import daemon_settings
from tests.e2e.browser import artifact_path, browser, new_page, page  # noqa: F401  (fixtures)
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent

NUMBER = re.compile(r"\d{8}-[A-Z]{2,8}-\d{4}")
COMPLAINT = "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，希望换货"
WAIT = 15_000   # ms: generous on two shared cores


@pytest_asyncio.fixture
async def kesu(sqlite_url, tmp_path):
    settings = daemon_settings(sqlite_url, tmp_path)
    async with Kesu(settings, classifier=KeywordClassifier()) as daemon:
        daemon.url = f"http://127.0.0.1:{daemon.http_port}"
        yield daemon


async def open_widget(page, url: str):
    await page.goto(url + "/")
    await page.locator(".launcher").click()
    await page.locator(".log .msg.from-bot").first.wait_for(timeout=WAIT)


async def say(page, text: str) -> None:
    box = page.locator(".composer textarea")
    await box.fill(text)
    await box.press("Enter")


async def wait_text(page, pattern: str, selector: str = ".log .msg.from-bot .bubble"):
    await page.locator(selector, has_text=re.compile(pattern)).last.wait_for(timeout=WAIT)


async def log_text(page) -> str:
    return await page.locator(".log").inner_text()


async def test_complain_confirm_see_the_number_and_the_history_after_a_reload(page, kesu):
    await open_widget(page, kesu.url)
    assert await page.locator(".panel").get_attribute("role") == "dialog"
    await say(page, COMPLAINT)
    await wait_text(page, "请确认以下信息")
    await page.locator(".options button", has_text="确认").click()
    await wait_text(page, r"已为您登记投诉，编号")
    number = NUMBER.search(await log_text(page)).group(0)
    async with kesu.runtime.sessionmaker() as s:
        assert await s.scalar(select(Complaint.channel).where(Complaint.number == number)) == "webchat"

    await page.reload()
    await page.locator(".log .msg.from-bot", has_text=number).wait_for(timeout=WAIT)   # reopened, with history
    history = await log_text(page)
    assert COMPLAINT in history and "请确认以下信息" in history
    other_tab = await new_page(page.context.browser, context=page.context)
    await other_tab.goto(kesu.url + "/")
    await other_tab.locator(".log .msg.from-bot", has_text=number).wait_for(timeout=WAIT)
    assert page.errors == [] and other_tab.errors == []


async def test_the_host_pages_styles_do_not_reach_the_widget(page, kesu):
    await page.goto(kesu.url + "/")
    launcher = page.locator(".launcher")
    await launcher.wait_for(timeout=WAIT)
    style = await launcher.evaluate("b => { const s = getComputedStyle(b); return [s.fontSize, s.backgroundColor] }")
    host_button = await page.locator("main button").evaluate("b => getComputedStyle(b).backgroundColor")
    assert style == ["15px", "rgb(37, 99, 235)"] and host_button == "rgb(255, 105, 180)"   # hotpink stays outside
    assert await page.evaluate("document.querySelector('kesu-chat').shadowRoot !== null")


async def test_html_in_messages_is_shown_as_text_and_never_runs(page, kesu):
    await open_widget(page, kesu.url)
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>粗体</b>'
    await say(page, evil)
    echo = page.locator(".log .msg.from-customer:not(.pending) .bubble").last
    await echo.wait_for(timeout=WAIT)
    await wait_text(page, "订单号|产品|什么时候|怎么处理|联系")
    assert await echo.inner_text() == evil
    await page.wait_for_timeout(300)      # give an injected onerror every chance to fire
    assert await page.evaluate("window.__pwned === undefined")
    assert await page.evaluate("document.querySelector('kesu-chat').shadowRoot.querySelectorAll('.log img, .log b, .log script').length") == 0
    assert page.errors == []


async def test_an_agents_reply_arrives_live(page, kesu):
    await open_widget(page, kesu.url)
    await say(page, "转人工")
    await wait_text(page, "已为您转接人工客服")
    async with kesu.runtime.sessionmaker() as s:
        _, token = await create_agent(s, "wang", "agent", "CS")
        await s.commit()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(kesu.url, headers=headers) as http:
        chats = (await (await http.get("/api/chats")).json())["chats"]
        assert len(chats) == 1 and chats[0]["online"]
        resp = await http.post(f"/api/chats/{chats[0]['id']}/messages",
                               json={"text": "您好，我是客服小王。<img src=x onerror=alert(1)>"})
        assert resp.status == 201
    reply = page.locator(".log .msg.from-agent .bubble")
    await reply.wait_for(timeout=WAIT)
    assert await reply.inner_text() == "您好，我是客服小王。<img src=x onerror=alert(1)>"
    assert page.errors == []


async def test_messages_typed_offline_are_sent_once_when_it_reconnects(page, kesu):
    channel = kesu.channels["webchat"]
    await open_widget(page, kesu.url)
    channel.limits.sockets_per_ip = 0            # every reconnect is refused for now
    await channel.close()                        # drop the open socket, as a restart would
    status = page.locator(".status")
    await page.locator(".status[data-state=offline]").wait_for(timeout=WAIT)
    assert "离线" in await status.inner_text()
    await say(page, "网络断了也要投诉：空调不制冷")
    pending = page.locator(".log .msg.pending")
    await pending.wait_for(timeout=WAIT)
    assert "待发送" in await pending.inner_text()
    channel.limits.sockets_per_ip = 30           # the server takes connections again
    await page.locator(".status[data-state=online]").wait_for(timeout=WAIT)
    await wait_text(page, "订单号|产品")
    assert await page.locator(".log .msg.pending").count() == 0
    async with kesu.runtime.sessionmaker() as s:
        stored = (await s.scalars(select(ChatMessage.text).where(ChatMessage.direction == "in"))).all()
    assert stored == ["网络断了也要投诉：空调不制冷"]


async def test_the_panel_is_usable_at_phone_width_and_by_keyboard(browser, kesu):
    phone = await new_page(browser, viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
    await phone.goto(kesu.url + "/")
    launcher = phone.locator(".launcher")
    await launcher.focus()
    await phone.keyboard.press("Enter")                       # opens from the keyboard
    await phone.locator(".log .msg.from-bot").first.wait_for(timeout=WAIT)
    focused = await phone.evaluate("document.querySelector('kesu-chat').shadowRoot.activeElement.tagName")
    assert focused == "TEXTAREA"
    panel = await phone.locator(".panel").bounding_box()
    assert (panel["x"], panel["y"], panel["width"], panel["height"]) == (0, 0, 360, 640)
    for part in (".composer textarea", ".composer .send", ".close", ".options button >> nth=0"):
        box = await phone.locator(part).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 640, part
    await phone.keyboard.type("快递三天还没到")
    await phone.keyboard.press("Enter")
    await wait_text(phone, "订单号")
    await phone.screenshot(path=str(artifact_path("chat-widget-360px.png")))
    await phone.keyboard.press("Escape")                      # closes, focus back on the button
    assert await phone.locator(".panel").is_hidden()
    assert await phone.evaluate("document.querySelector('kesu-chat').shadowRoot.activeElement.className") == "launcher"
    assert phone.errors == []
    await phone.context.close()
