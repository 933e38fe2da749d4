"""Web chat under load: simulated customers each complete a complaint dialogue over the websocket.

kesu runs in a child process (SQLite, the real classifier), the customers in this one, so the
two share the machine's cores the way a server and its clients would.

Phase 1 (latency): every customer connects, then talks through a whole complaint (description,
order number, time, wish, phone, confirmation, rating) with 2-6 s of "typing" between turns
(people typing Chinese on a phone take longer; --think 0.5,1.5 is the stress setting). Bot reply latency = customer message sent -> first bot message received.
Phase 2 (rate): the same number of sockets send turns back to back (closed loop) to the chat,
then the same to a bare aiohttp echo websocket in another child process; the ratio of the two
message rates is what to compare between machines.

Usage: python bench/chat.py [--sessions 200] [--think 2,6] [--rate-turns 10]
Prints a summary line and a JSON line with sessions, p50_ms, p95_ms and ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THINK = (2.0, 6.0)          # seconds between a bot reply and the customer's next message (--think)
RAMP = 3.0                  # customers arrive over this many seconds
PRODUCTS = ["冰箱", "空调", "洗衣机", "手机", "笔记本电脑", "电视", "热水器", "耳机"]
PROBLEMS = ["用了两天就坏了", "送来的时候外壳是破的", "一直有异响", "完全不能开机", "和描述的不一样"]
WISHES = ["换货", "退款", "维修", "道歉"]


def script(i: int) -> list[str]:
    """One customer's side of a complaint dialogue (the bot asks for each missing piece)."""
    rnd = random.Random(i)
    product = rnd.choice(PRODUCTS)
    return [f"我买的{product}{rnd.choice(PROBLEMS)}，很失望", f"JD{20261100000 + i}", "上周五",
            rnd.choice(WISHES), f"139{i:08d}", "确认", str(rnd.randint(3, 5))]


# -- servers (child processes) ----------------------------------------------------------------------

def _serve_kesu(tmp: str, model_dir: str, ready) -> None:
    async def main():
        from intake.daemon import Kesu
        from intake.settings import Settings
        from models.migrate import upgrade_async
        url = f"sqlite+aiosqlite:///{tmp}/chat-bench.db"
        await upgrade_async(url)
        settings = Settings(database_url=url, http_port=0, key_file=f"{tmp}/kesu.key", model_dir=model_dir)
        async with Kesu(settings) as kesu:
            limits = kesu.channels["webchat"].limits
            limits.sessions_per_ip_hour = limits.sockets_per_ip = 1_000_000   # every customer is 127.0.0.1
            limits.messages = 1_000_000
            ready.put(kesu.http_port)
            await asyncio.Event().wait()
    asyncio.run(main())


def _serve_echo(ready) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    async def main():
        app = web.Application()
        app.router.add_get("/echo", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.put(runner.addresses[0][1])
        await asyncio.Event().wait()
    asyncio.run(main())


def start(target, *args) -> tuple[mp.Process, int]:
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, ready), daemon=True)
    proc.start()
    return proc, ready.get(timeout=300)


# -- customers ----------------------------------------------------------------------------------------

class Customer:
    def __init__(self, http, url: str):
        self.http, self.url = http, url
        self.ws = None

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(self.url, max_msg_size=4 * 1024 * 1024)
        await self.ws.send_json({"type": "hello", "token": None})
        welcome = await self.ws.receive_json(timeout=60)
        assert welcome["type"] == "welcome", welcome

    async def turn(self, text: str) -> tuple[float, list[str]]:
        """Send one message; (seconds to the first bot message, every bot text of this turn)."""
        cid = uuid.uuid4().hex
        t0 = time.perf_counter()
        await self.ws.send_json({"type": "message", "text": text, "cid": cid})
        first, said = None, []
        while True:
            frame = await self.ws.receive_json(timeout=60)
            if frame["type"] == "message" and frame["from"] != "customer":
                first = first or time.perf_counter() - t0
                said.append(frame["text"])
            elif frame["type"] == "typing" and not frame["on"] and frame.get("cid") == cid:
                return first or time.perf_counter() - t0, said
            elif frame["type"] == "error":
                raise RuntimeError(f"error frame: {frame}")


async def dialogue(http, url: str, i: int, latencies: list[float], register_latencies: list[float],
                   think: tuple[float, float] = THINK) -> bool:
    await asyncio.sleep(random.uniform(0, RAMP))
    c = Customer(http, url)
    await c.connect()
    registered = False
    for text in script(i):
        await asyncio.sleep(random.uniform(*think))
        seconds, said = await c.turn(text)
        latencies.append(seconds)
        if text == "确认":
            register_latencies.append(seconds)
            registered = any("已为您登记投诉" in s for s in said)
    await c.ws.close()
    return registered


async def closed_loop(http, url: str, clients: int, turns: int, chat: bool) -> float:
    """Messages per second with every socket sending its next message as soon as it is answered."""
    sockets = []
    for _ in range(clients):
        if chat:
            c = Customer(http, url)
            await c.connect()
            sockets.append(c)
        else:
            sockets.append(await http.ws_connect(url))

    async def run(sock) -> None:
        for k in range(turns):
            if chat:    # two real turns: a status request (asks the number), then cancelling it
                await sock.turn("查询进度" if k % 2 == 0 else "取消")
            else:
                await sock.send_str(json.dumps({"type": "message", "text": "查询进度", "cid": uuid.uuid4().hex}))
                await sock.receive_str(timeout=60)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(s) for s in sockets))
    elapsed = time.perf_counter() - t0
    for s in sockets:
        await (s.ws if chat else s).close()
    return clients * turns / elapsed


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def measure(kesu_port: int, echo_port: int, sessions: int, rate_turns: int,
                  think: tuple[float, float] = THINK) -> dict:
    import aiohttp
    chat_url = f"http://127.0.0.1:{kesu_port}/chat/ws"
    echo_url = f"http://127.0.0.1:{echo_port}/echo"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm = Customer(http, chat_url)                    # warm up: a whole complaint (tokenizer, caches)
        await warm.connect()
        for text in script(sessions):
            await warm.turn(text)
        await warm.ws.close()
        latencies: list[float] = []
        registering: list[float] = []
        t0 = time.perf_counter()
        done = await asyncio.gather(*(dialogue(http, chat_url, i, latencies, registering, think)
                                      for i in range(sessions)))
        phase1 = time.perf_counter() - t0
        chat_rate = await closed_loop(http, chat_url, sessions, rate_turns, chat=True)
        echo_rate = await closed_loop(http, echo_url, sessions, rate_turns, chat=False)
    return {
        "bench": "chat", "sessions": sessions, "registered": sum(done), "turns": len(latencies),
        "think_s": list(think),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "register_p95_ms": round(percentile(registering, 95) * 1000, 1),
        "dialogue_s": round(phase1, 1),
        "chat_msgs_per_s": round(chat_rate, 1), "echo_msgs_per_s": round(echo_rate, 1),
        "ratio": round(chat_rate / echo_rate, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rate-turns", type=int, default=10, help="messages per socket in the rate phase")
    parser.add_argument("--think", default=f"{THINK[0]},{THINK[1]}", help="seconds between turns: min,max")
    args = parser.parse_args()
    think = tuple(float(x) for x in args.think.split(","))
    tmp = tempfile.mkdtemp(prefix="kesu-chat-bench-")
    model_dir = os.environ.get("KESU_MODEL_DIR") or str(Path(tmp) / "models")
    from classifier import ensure_default_model
    ensure_default_model(model_dir)                        # trained once; reuse with KESU_MODEL_DIR
    kesu, kesu_port = start(_serve_kesu, tmp, model_dir)
    echo, echo_port = start(_serve_echo)
    try:
        figures = asyncio.run(measure(kesu_port, echo_port, args.sessions, args.rate_turns, think))
    finally:
        for proc in (kesu, echo):
            proc.terminate()
            proc.join(10)
    print(f"{figures['sessions']} customers, {figures['registered']} complaints registered, {figures['turns']} turns: "
          f"bot reply p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms (registration turn p95 "
          f"{figures['register_p95_ms']} ms); closed loop chat {figures['chat_msgs_per_s']}/s vs bare echo "
          f"{figures['echo_msgs_per_s']}/s, ratio {figures['ratio']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
