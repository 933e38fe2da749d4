"""Signed webhook intake under load: kesu (verify, parse, commit to the inbox) against a bare
aiohttp handler that answers 200, both in child processes on this machine, in the same run.

Phase 1 (latency): an open-loop load of --rate requests/s for --seconds to each server; latency
is measured from each request's scheduled send time (so a stall is not hidden by waiting).
Phase 2 (rate): --concurrency connections send back to back for --rate-seconds; ratio = kesu's
requests/s / the bare handler's.

kesu's side is the webhook channel with the real inbox on a fresh SQLite file (or --database);
the response does not wait for the pipeline (accept + commit is what is measured).

Usage: python bench/webhook.py [--rate 200] [--seconds 10] [--concurrency 32] [--rate-seconds 5]
Prints human lines, then one JSON line with kesu_rps, bare_rps, ratio and p99_ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret"
TEXTS = ["快递三天没到，客服电话一直打不通", "收到的冰箱外壳是破的，要求换货", "申请退款半个月了还没到账",
         "安装师傅态度很差，还多收了费用", "手机用了两天就无法开机"]


# -- servers (child processes) ---------------------------------------------------------------------

def serve(kind: str, database: str | None, conn) -> None:
    asyncio.run(_serve(kind, database, conn))


async def _serve(kind: str, database: str | None, conn) -> None:
    from aiohttp import web
    app = web.Application(client_max_size=1 << 20)
    cleanup = None
    if kind == "bare":
        async def ok(request):
            await request.read()
            return web.json_response({"status": "accepted"})
        app.router.add_post("/webhooks/{source}", ok)
    else:
        from connectors.webhook import WebhookChannel
        from intake.inbox import Inbox
        from intake.settings import WebhookSource
        from models import make_engine, make_sessionmaker
        from models.crypto import Keyring, configure
        configure(Keyring(os.urandom(32)))
        engine = make_engine(database)
        inbox = Inbox(make_sessionmaker(engine))
        channel = WebhookChannel({"shop": WebhookSource("shop", SECRET)}, intake=_AcceptOnly(inbox),
                                 attachment_limit=10 << 20, number_timeout=0)
        channel.setup_routes(app)
        cleanup = engine.dispose
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    conn.send(runner.addresses[0][1])
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)   # until the parent says stop
    await runner.cleanup()
    if cleanup:
        await cleanup()


class _AcceptOnly:
    """IntakePort whose pipeline is elsewhere: the answer carries a number only if already known."""

    def __init__(self, inbox):
        self.inbox = inbox

    async def accept(self, msg):
        return await self.inbox.accept(msg)

    async def outcome(self, channel, external_id):
        return await self.inbox.outcome(channel, external_id)

    async def process_now(self, channel, external_id, timeout=3.0):
        return None


# -- load (this process) ---------------------------------------------------------------------------

def request_body(i: int) -> bytes:
    return json.dumps({"event_id": f"bench-{uuid.uuid4().hex}-{i}",
                       "sender": {"id": f"u{i % 500}", "name": "测试用户", "phone": f"138{i % 10**8:08d}"},
                       "text": TEXTS[i % len(TEXTS)], "created_at": "2026-11-23T10:00:00+08:00"},
                      ensure_ascii=False).encode()


def headers_for(body: bytes) -> dict:
    from connectors.webhook import signed_headers
    return signed_headers(SECRET, body)


async def open_loop(http, url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Send rate x seconds requests on schedule; latency in ms from the scheduled time."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(i: int):
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        body = request_body(i)
        try:
            async with http.post(url, data=body, headers=headers_for(body)) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
        except Exception:
            errors += 1
        latencies.append((loop.time() - due) * 1000)

    await asyncio.gather(*(one(i) for i in range(n)))
    return latencies, errors


async def closed_loop(http, url: str, concurrency: int, seconds: float) -> tuple[float, int]:
    done = errors = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker(w: int):
        nonlocal done, errors
        i = w
        while loop.time() < end:
            body = request_body(10**7 + i)
            i += concurrency
            async with http.post(url, data=body, headers=headers_for(body)) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            done += 1

    t0 = loop.time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (loop.time() - t0), errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(port: int, args) -> dict:
    import aiohttp
    url = f"http://127.0.0.1:{port}/webhooks/shop"
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 256))
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(50):   # warm up connections and caches
            body = request_body(-i - 1)
            async with http.post(url, data=body, headers=headers_for(body)) as resp:
                await resp.read()
        latencies, lat_errors = await open_loop(http, url, args.rate, args.seconds)
        rps, rate_errors = await closed_loop(http, url, args.concurrency, args.rate_seconds)
    return {"p50": statistics.median(latencies), "p99": pct(latencies, 99), "max": max(latencies),
            "rps": rps, "errors": lat_errors + rate_errors}


def run_server(kind: str, database: str | None, args) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(kind, database, child), daemon=True)
    proc.start()
    try:
        port = parent.recv()
        return asyncio.run(measure(port, args))
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


def count_stored(database: str) -> int:
    from sqlalchemy import func, select
    from models import InboxItem, make_engine

    async def count():
        engine = make_engine(database)
        async with engine.connect() as conn:
            n = await conn.scalar(select(func.count()).select_from(InboxItem))
        await engine.dispose()
        return n
    return asyncio.run(count())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="offered load, requests/s (latency phase)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    ap.add_argument("--concurrency", type=int, default=32, help="connections in the throughput phase")
    ap.add_argument("--rate-seconds", type=float, default=5.0, help="length of the throughput phase")
    ap.add_argument("--database", help="database URL for kesu (default: a fresh SQLite file)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="kesu-bench-")
    database = args.database or f"sqlite+aiosqlite:///{tmp}/kesu.db"
    from models.migrate import upgrade
    upgrade(database)
    before = count_stored(database)

    bare = run_server("bare", None, args)
    kesu = run_server("kesu", database, args)
    stored = count_stored(database) - before
    sent = 50 + int(args.rate * args.seconds)
    engine = "sqlite" if database.startswith("sqlite") else "postgresql"
    print(f"offered load {args.rate:.0f} req/s for {args.seconds:.0f} s, then {args.concurrency} connections "
          f"for {args.rate_seconds:.0f} s; kesu on {engine}, {os.cpu_count()} cores")
    for name, r in (("bare aiohttp", bare), ("kesu webhook", kesu)):
        print(f"  {name:13s} p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  max {r['max']:7.1f} ms  "
              f"max rate {r['rps']:7.0f} req/s  errors {r['errors']}")
    ratio = kesu["rps"] / bare["rps"] if bare["rps"] else 0.0
    print(f"  ratio (kesu / bare requests per second) {ratio:.2f}; messages stored by kesu: {stored} "
          f"(at least {sent} expected)")
    print(json.dumps({"bench": "webhook", "engine": engine, "offered_rps": args.rate, "seconds": args.seconds,
                      "kesu_rps": round(kesu["rps"], 1), "bare_rps": round(bare["rps"], 1),
                      "ratio": round(ratio, 3), "p99_ms": round(kesu["p99"], 2), "p50_ms": round(kesu["p50"], 2),
                      "bare_p99_ms": round(bare["p99"], 2), "errors": kesu["errors"], "stored": stored}))


if __name__ == "__main__":
    main()
