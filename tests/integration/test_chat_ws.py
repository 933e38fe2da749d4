"""The web chat websocket and the agents' chat API, through aiohttp's test client, with the real
intake (inbox, worker, pipeline) and outbox dispatcher behind them."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid

import pytest
import pytest_asyncio
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from connectors.base import OutboundMessage, PermanentSendError
from connectors.webchat import Limits, WebchatChannel
from console.app import build_app
from intake.outbox import Dispatcher
from intake.runtime import Runtime
from models import (ChatMessage, ChatSession, Complaint, ComplaintMessage, InboxItem, OutboxItem, StoredAttachment,
                    SurveyResponse)
from tests.conftest import daemon_settings
from tests.fakes import KeywordClassifier
from workflow.agents import create_agent

NUMBER = re.compile(r"\d{8}-[A-Z]{2,8}-\d{4}")
COMPLAINT = "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，希望换货"


class Node:
    """One kesu process as far as the chat goes: the console app with the chat routes, over a runtime."""

    def __init__(self, runtime: Runtime, channel: WebchatChannel, client: TestClient, tasks: list[asyncio.Task]):
        self.runtime, self.channel, self.client, self.tasks = runtime, channel, client, tasks

    @property
    def sessionmaker(self):
        return self.runtime.sessionmaker


@contextlib.asynccontextmanager
async def node(url: str, tmp_path, *, limits: Limits | None = None, register_timeout: float = 5.0,
               dispatch: bool = True):
    settings = daemon_settings(url, tmp_path)
    rt = await Runtime.open(settings, classifier=KeywordClassifier())
    channel: WebchatChannel = rt.channels["webchat"]          # built from settings like every channel
    channel.limits, channel.register_timeout = limits or Limits(), register_timeout
    app = build_app(sessionmaker=rt.sessionmaker, intake=rt.intake, settings=settings, classifier=rt.classifier,
                    calendar=rt.services.calendar)
    channel.setup_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    jobs = [rt.worker.run_forever(0.2), *channel.background()]
    if dispatch:
        jobs.append(Dispatcher(rt.sessionmaker, rt.channels, wake=rt.worker.outbox_wake).run_forever(0.2))
    tasks = [asyncio.create_task(j) for j in jobs]
    try:
        yield Node(rt, channel, client, tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await rt.close()


@pytest_asyncio.fixture
async def kesu(sqlite_url, tmp_path):
    async with node(sqlite_url, tmp_path) as n:
        yield n


class Chat:
    """A customer's socket: sends, and collects what comes back."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        self.token = self.session = None

    @classmethod
    async def open(cls, client: TestClient, token: str | None = None) -> "Chat":
        chat = cls(await client.ws_connect("/chat/ws"))
        await chat.ws.send_json({"type": "hello", "token": token})
        welcome = await chat.next()
        if welcome["type"] == "welcome":
            chat.token, chat.session = welcome.get("token", token), welcome["session"]
        chat.welcome = welcome
        return chat

    async def next(self, timeout: float = 10.0) -> dict:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        self.frames.append(frame)
        return frame

    async def until(self, pred, timeout: float = 10.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                if pred(frame):
                    return frame

    async def say(self, text: str, cid: str | None = None) -> list[dict]:
        """Send a message and return the bot's answers to it."""
        cid = cid or uuid.uuid4().hex
        start = len(self.frames)
        await self.ws.send_json({"type": "message", "text": text, "cid": cid})
        await self.until(lambda f: f["type"] == "typing" and not f["on"] and f.get("cid") == cid)
        return [f for f in self.frames[start:] if f["type"] == "message" and f["from"] != "customer"]

    async def close(self):
        await self.ws.close()


def texts(frames) -> str:
    return "\n".join(f["text"] for f in frames)


async def register(chat: Chat) -> str:
    said = await chat.say(COMPLAINT)
    assert "确认" in texts(said)
    said = await chat.say("确认")
    return NUMBER.search(texts(said)).group(0)


async def wait_for(predicate, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while not (result := await predicate()):
            await asyncio.sleep(0.05)
    return result


async def agent_token(sessionmaker) -> str:
    async with sessionmaker() as s:
        _, token = await create_agent(s, f"agent-{uuid.uuid4().hex[:6]}", "agent", "CS")
        await s.commit()
    return token


# -- sessions, history, resume ----------------------------------------------------------------------

async def test_a_new_session_gets_a_token_and_the_welcome(kesu):
    chat = await Chat.open(kesu.client)
    assert chat.welcome["type"] == "welcome" and len(chat.token) >= 40
    (hello,) = chat.welcome["history"]
    assert hello["from"] == "bot" and "投诉" in hello["text"] and "转人工" in hello["options"]
    async with kesu.sessionmaker() as s:
        row = await s.scalar(select(ChatSession))
        assert row.public_id == chat.session and chat.token not in row.token_hash   # only a hash is kept


async def test_complaint_dialogue_registers_and_tells_the_number_once(db_url, tmp_path):
    async with node(db_url, tmp_path) as kesu:
        chat = await Chat.open(kesu.client)
        said = await chat.say(COMPLAINT)
        summary = texts(said)
        assert all(p in summary for p in ("冰箱", "JD123456789", "昨天", "换货", "13912345678"))
        said = await chat.say("确认")
        number = NUMBER.search(said[0]["text"]).group(0)
        assert "8小时" in said[0]["text"] and "主管" not in said[0]["text"]
        async with kesu.sessionmaker() as s:
            c = await s.scalar(select(Complaint).where(Complaint.number == number))
            assert (c.channel, c.product, c.order_no, c.status) == ("webchat", "冰箱", "JD123456789", "registered")
            assert c.text.startswith("昨天买的冰箱漏水") and "诉求：换货" in c.text
            item = await s.scalar(select(InboxItem).where(InboxItem.complaint_id == c.id))
            confirm_seq = await s.scalar(select(ChatMessage.seq).where(ChatMessage.direction == "in")
                                         .order_by(ChatMessage.seq.desc()).limit(1))
            assert item.external_id == f"{chat.session}:{confirm_seq}"
            assert item.message["meta"] == {"product": "冰箱", "order_no": "JD123456789", "when": "昨天", "wants": "换货"}

        async def ack_done():
            async with kesu.sessionmaker() as s:
                ack = await s.scalar(select(OutboxItem).where(OutboxItem.kind == "ack"))
                return ack if ack.status == "sent" else None
        ack = await wait_for(ack_done)
        async with kesu.sessionmaker() as s:
            lines = (await s.scalars(select(ChatMessage.text).where(ChatMessage.direction == "out"))).all()
        assert sum(number in t for t in lines) == 1          # the outbox ack was not shown a second time
        assert ack.last_error is None


async def test_a_reconnect_with_the_token_resumes_the_conversation_with_its_history(kesu):
    chat = await Chat.open(kesu.client)
    await chat.say("空调坏了不制冷")
    await chat.close()
    again = await Chat.open(kesu.client, token=chat.token)
    assert again.welcome["session"] == chat.session and "token" not in again.welcome
    history = again.welcome["history"]
    assert [m["from"] for m in history] == ["bot", "customer", "bot"]
    assert history[1]["text"] == "空调坏了不制冷" and [m["seq"] for m in history] == [1, 2, 3]
    said = await again.say("空调")      # the dialogue goes on where it was
    assert "订单号" in texts(said)


async def test_two_tabs_of_one_session_both_see_every_message(kesu):
    one = await Chat.open(kesu.client)
    two = await Chat.open(kesu.client, token=one.token)
    await one.say("快递三天还没到")
    seen = await two.until(lambda f: f["type"] == "message" and f["from"] == "bot" and "订单号" in f["text"])
    assert any(f.get("text") == "快递三天还没到" for f in two.frames) and seen


async def test_a_message_sent_again_after_a_reconnect_is_stored_once(kesu):
    chat = await Chat.open(kesu.client)
    first = await chat.say("空调坏了不制冷", cid="c-1")
    again = await chat.say("空调坏了不制冷", cid="c-1")
    assert first and again == []
    echoes = [f for f in chat.frames if f["type"] == "message" and f.get("cid") == "c-1"]
    assert len(echoes) == 2 and echoes[0]["id"] == echoes[1]["id"]
    async with kesu.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(ChatMessage).where(ChatMessage.direction == "in")) == 1


# -- bad input ------------------------------------------------------------------------------------------

async def test_bad_frames_get_error_frames_and_the_socket_keeps_working(kesu):
    ws = await kesu.client.ws_connect("/chat/ws")
    for bad in ("not json", "[1, 2]", '{"type": 5}', '{"type": "message", "text": "hi"}', '{"type": "nope"}'):
        await ws.send_str(bad)
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] in ("invalid_frame", "no_session"), bad
    await ws.send_bytes(b"\x00\x01binary")
    assert (await ws.receive_json(timeout=5))["code"] == "binary_not_supported"
    await ws.send_json({"type": "hello", "token": "no-such-token"})
    frame = await ws.receive_json(timeout=5)
    assert frame["code"] == "unknown_session" and "新的对话" in frame["text"]
    await ws.send_json({"type": "hello", "token": None})       # what the widget does next
    assert (await ws.receive_json(timeout=5))["type"] == "welcome"
    await ws.send_json({"type": "message", "text": 12, "cid": "x"})
    assert (await ws.receive_json(timeout=5))["code"] == "invalid_frame"
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
    await ws.close()
    healthy = await kesu.client.get("/healthz")
    assert healthy.status == 200


async def test_a_message_over_2000_characters_is_refused_with_a_message(kesu):
    chat = await Chat.open(kesu.client)
    await chat.ws.send_json({"type": "message", "text": "长" * 2001, "cid": "long"})
    frame = await chat.next()
    assert frame == {"type": "error", "code": "too_long", "text": "消息太长了（最多2000字），请分几次发送。", "cid": "long"}
    said = await chat.say("好" * 2000)       # exactly the limit is fine
    assert said
    async with kesu.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(ChatMessage).where(ChatMessage.direction == "in")) == 1


async def test_html_is_stored_and_echoed_as_plain_text(kesu):
    chat = await Chat.open(kesu.client)
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    await chat.say(evil)
    echo = next(f for f in chat.frames if f["type"] == "message" and f["from"] == "customer")
    assert echo["text"] == evil          # the widget renders it with textContent


async def test_more_than_ten_messages_in_ten_seconds_are_rate_limited(kesu):
    chat = await Chat.open(kesu.client)
    for i in range(10):
        await chat.ws.send_json({"type": "message", "text": f"第{i}条：快递还没到", "cid": f"m{i}"})
    await chat.ws.send_json({"type": "message", "text": "第11条", "cid": "m10"})
    limited = await chat.until(lambda f: f["type"] == "error")
    assert limited["code"] == "rate_limited" and limited["cid"] == "m10"
    async with kesu.sessionmaker() as s:
        stored = set((await s.scalars(select(ChatMessage.client_id).where(ChatMessage.direction == "in"))).all())
    assert stored == {f"m{i}" for i in range(10)}


async def test_too_many_sessions_from_one_address_are_refused(sqlite_url, tmp_path):
    async with node(sqlite_url, tmp_path, limits=Limits(sessions_per_ip_hour=2, sockets_per_ip=4)) as kesu:
        a, b = await Chat.open(kesu.client), await Chat.open(kesu.client)
        c = await Chat.open(kesu.client)
        assert c.welcome == {"type": "error", "code": "too_many_sessions", "text": "当前网络发起的会话过多，请稍后再试。"}
        resumed = await Chat.open(kesu.client, token=a.token)       # resuming is not a new session
        assert resumed.welcome["type"] == "welcome"
        ws = await kesu.client.ws_connect("/chat/ws")                # a fifth open socket
        assert (await ws.receive_json(timeout=5))["code"] == "too_many_connections"
        for chat in (a, b, c, resumed):
            await chat.close()


async def test_photos_are_checked(kesu):
    chat = await Chat.open(kesu.client)
    await chat.ws.send_json({"type": "photo", "cid": "p1", "name": "a.exe", "mime": "application/x-msdownload",
                             "data": base64.b64encode(b"MZ").decode()})
    assert (await chat.next())["code"] == "invalid_photo"
    await chat.ws.send_json({"type": "photo", "cid": "p2", "name": "a.png", "mime": "image/png", "data": "!!!"})
    assert (await chat.next())["code"] == "invalid_photo"
    big = base64.b64encode(b"\0" * (2 * 1024 * 1024 + 1)).decode()
    await chat.ws.send_json({"type": "photo", "cid": "p3", "name": "a.png", "mime": "image/png", "data": big})
    assert (await chat.next())["code"] == "photo_too_large"


# -- the other intents ------------------------------------------------------------------------------------

async def test_p0_complaint_reply_says_a_supervisor_was_alerted(kesu):
    chat = await Chat.open(kesu.client)
    await chat.say("孩子用了你们的电暖器被烫受伤了，今天，订单号 A998877665，电话 13812345678，要求赔偿")
    said = await chat.say("确认")
    assert "主管" in texts(said) and "2小时" in texts(said)


async def test_a_number_that_comes_late_is_delivered_by_the_acknowledgement(sqlite_url, tmp_path):
    async with node(sqlite_url, tmp_path, register_timeout=0.0) as kesu:
        chat = await Chat.open(kesu.client)
        await chat.say(COMPLAINT)
        said = await chat.say("确认")
        assert "编号生成后" in texts(said) and not NUMBER.search(texts(said))
        ack = await chat.until(lambda f: f["type"] == "message" and NUMBER.search(f["text"]))
        assert ack["from"] == "bot" and "已受理" in ack["text"]


async def test_status_check_needs_the_contact_registered_with_the_complaint(kesu):
    number = await register(await Chat.open(kesu.client))
    other = await Chat.open(kesu.client)
    said = await other.say(f"查询 {number} 的进度")
    assert "手机号或邮箱" in texts(said)
    said = await other.say("13800000000")
    assert "不匹配" in texts(said) and "已登记" not in texts(said)
    said = await other.say("139-1234-5678")
    assert number in texts(said) and "已登记" in texts(said)


async def test_information_and_a_photo_are_added_to_an_existing_complaint(kesu):
    owner = await Chat.open(kesu.client)
    number = await register(owner)
    other = await Chat.open(kesu.client)                 # another device: proves the contact first
    await other.say(f"补充 {number}：门封条也是坏的")
    said = await other.say("13912345678")
    assert f"已将您的补充信息添加到投诉 {number}" in texts(said)
    said = await owner.say("跳过")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    cid = "photo-1"
    await owner.ws.send_json({"type": "photo", "cid": cid, "name": "漏水.png", "mime": "image/png", "data": png})
    await owner.until(lambda f: f["type"] == "typing" and f.get("cid") == cid and not f["on"])
    assert f"已将您的照片添加到投诉 {number}" in texts([f for f in owner.frames if f["type"] == "message"][-1:])
    async with kesu.sessionmaker() as s:
        c = await s.scalar(select(Complaint).where(Complaint.number == number))
        thread = (await s.scalars(select(ComplaintMessage.text).where(
            ComplaintMessage.complaint_id == c.id, ComplaintMessage.direction == "in").order_by(ComplaintMessage.id))).all()
        assert thread[1] == "门封条也是坏的" and "照片" in thread[2]
        photo = await s.scalar(select(StoredAttachment))
        assert (photo.name, photo.content_type, photo.data) == ("漏水.png", "image/png", b"\x89PNG\r\n\x1a\nfake")
        assert await s.scalar(select(func.count()).select_from(Complaint)) == 1


async def test_the_rating_is_stored_as_a_survey_answer(kesu):
    chat = await Chat.open(kesu.client)
    number = await register(chat)
    said = await chat.say("4")
    assert "感谢您的评价" in texts(said)
    async with kesu.sessionmaker() as s:
        r = await s.scalar(select(SurveyResponse))
        c = await s.get(Complaint, r.complaint_id)
        assert (c.number, r.channel, r.efficiency, r.attitude, r.solution) == (number, "webchat", 4, 4, 4)


async def test_asking_for_a_human_flags_the_chat_and_the_agents_reply_arrives_live(kesu):
    chat = await Chat.open(kesu.client)
    said = await chat.say("转人工")
    assert "人工客服" in texts(said)
    assert (await kesu.client.get("/api/chats")).status == 401
    headers = {"Authorization": f"Bearer {await agent_token(kesu.sessionmaker)}"}
    listed = await (await kesu.client.get("/api/chats", headers=headers)).json()
    assert [c["id"] for c in listed["chats"]] == [chat.session] and listed["chats"][0]["online"]
    assert await chat.say("我的快递丢了") == []                       # the bot leaves it to the agent
    reply = await kesu.client.post(f"/api/chats/{chat.session}/messages", headers=headers,
                                   json={"text": "您好，我是客服小王，<b>马上</b>为您查询。"})
    assert reply.status == 201
    live = await chat.until(lambda f: f["type"] == "message" and f["from"] == "agent")
    assert live["text"] == "您好，我是客服小王，<b>马上</b>为您查询。"
    history = await (await kesu.client.get(f"/api/chats/{chat.session}/messages", headers=headers)).json()
    assert [m["from"] for m in history["messages"]][-3:] == ["customer", "customer", "agent"] or \
        [m["from"] for m in history["messages"]][-4:] == ["customer", "bot", "customer", "agent"]
    released = await kesu.client.post(f"/api/chats/{chat.session}/release", headers=headers)
    assert (await released.json())["needs_human"] is False
    back = await chat.until(lambda f: f["type"] == "message" and f["from"] == "bot")
    assert "人工服务已结束" in back["text"]
    assert (await (await kesu.client.get("/api/chats", headers=headers)).json())["chats"] == []
    bad = await kesu.client.post(f"/api/chats/{chat.session}/messages", headers=headers, json={"text": ""})
    assert bad.status == 400 and (await bad.json())["error"] == "text is required"
    missing = await kesu.client.post("/api/chats/nope/messages", headers=headers, json={"text": "hi"})
    assert missing.status == 404


async def test_a_message_written_by_another_process_reaches_the_socket(db_url, tmp_path):
    async with node(db_url, tmp_path) as a, node(db_url, tmp_path, dispatch=False) as b:
        chat = await Chat.open(a.client)
        headers = {"Authorization": f"Bearer {await agent_token(b.sessionmaker)}"}
        resp = await b.client.post(f"/api/chats/{chat.session}/messages", headers=headers, json={"text": "另一个节点的回复"})
        assert resp.status == 201
        live = await chat.until(lambda f: f["type"] == "message" and f["from"] == "agent", timeout=10)
        assert live["text"] == "另一个节点的回复"


async def test_send_to_an_unknown_session_is_a_permanent_failure(kesu):
    item = OutboundMessage(id=1, channel="webchat", kind="progress", reply_to={"session": "nope"},
                           payload={"text": "进度"}, dedupe_key="x")
    with pytest.raises(PermanentSendError):
        await kesu.channel.send(item)
