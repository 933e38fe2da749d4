"""The scheduler with many open complaints: time to find and fire the due timers.

For each size (10 000 and 100 000 open complaints) a fresh database gets the complaints, each with
its two SLA warnings and a progress timer in the future, plus --due progress timers that are due
now (on as many complaints, spread over the table). The scheduler then runs until nothing is
due; each fired progress timer reads the last contact, writes an outbox row and the next timer.
The claim query is one range scan of the (fired_at, due_at) index, so the time per fired timer
should stay flat as the table grows: `growth` is ms_per_fired_100k / ms_per_fired_10k.

Usage: python bench/timers.py [--due 2000] [--sizes 10000,100000] [--url postgresql+asyncpg://...]
Prints a summary and a JSON line with ms_per_fired_10k, ms_per_fired_100k and growth.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from models import Complaint, OutboxItem, Timer, make_engine, make_sessionmaker, utcnow  # noqa: E402
from models.crypto import Keyring, configure  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.calendar import WorkCalendar  # noqa: E402
from workflow.config import WorkflowEnv  # noqa: E402
from workflow.organisation import ensure_defaults  # noqa: E402
from workflow.scheduler import Scheduler  # noqa: E402

CHUNK = 5000


async def seed(sm, n: int, due: int) -> None:
    now = utcnow()
    received = now - timedelta(hours=30)
    every = max(1, n // due)
    async with sm() as s:
        await ensure_defaults(s)
        await s.commit()
    for start in range(0, n, CHUNK):
        ids = range(start + 1, min(n, start + CHUNK) + 1)
        complaints = [dict(id=i, number=f"20261123-LG-{i:06d}", channel="email", status="in_progress",
                           category="logistics", urgency="P2", category_confidence=0.9, urgency_confidence=0.9,
                           needs_review=False, reviewed=True, suggestion={}, department_code="LG",
                           text=f"快递没到 {i}", reply_to={"address": f"c{i}@example.com"}, trace=[],
                           received_at=received, registered_at=received, response_due=received + timedelta(hours=8),
                           resolve_due=received + timedelta(days=9), updated_at=received, first_response_at=received)
                      for i in ids]
        timers = []
        for i in ids:
            for kind, at in (("response_warning", now + timedelta(days=30)),
                             ("resolution_warning", now + timedelta(days=31)),
                             ("progress", now + timedelta(days=1, seconds=i % 3600))):
                timers.append(dict(complaint_id=i, kind=kind, due_at=at, payload={}, cancelled=False,
                                   dedupe_key=f"{kind}:{i}:seed"))
            if i % every == 0 and i // every <= due:
                timers.append(dict(complaint_id=i, kind="progress", due_at=now - timedelta(seconds=i % 600),
                                   payload={}, cancelled=False, dedupe_key=f"progress:{i}:due"))
        async with sm() as s:
            await s.execute(insert(Complaint), complaints)
            await s.execute(insert(Timer), timers)
            await s.commit()
    async with sm() as s:
        if s.bind.dialect.name == "postgresql":
            await s.execute(text("ANALYZE"))
        await s.commit()


async def claim_plan(sm) -> str:
    async with sm() as s:
        stmt = (select(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= utcnow())
                .order_by(Timer.due_at, Timer.id).limit(256))
        sql = str(stmt.compile(s.bind, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if s.bind.dialect.name == "sqlite" else "EXPLAIN "
        rows = (await s.execute(text(prefix + sql))).all()
        await s.commit()
    return " | ".join(str(r[-1]) for r in rows)


async def run_size(url: str, n: int, due: int, cache_mb: int = 0) -> dict:
    engine = make_engine(url)
    if cache_mb and url.startswith("sqlite"):
        from sqlalchemy import event

        @event.listens_for(engine.sync_engine, "connect")
        def _cache(dbapi_conn, _record):
            dbapi_conn.cursor().execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    sm = make_sessionmaker(engine)
    try:
        t0 = time.perf_counter()
        await seed(sm, n, due)
        seeded = time.perf_counter() - t0
        plan = await claim_plan(sm)
        scheduler = Scheduler(sm, WorkflowEnv(WorkCalendar()), batch=256, read_replies=False)
        start = time.perf_counter()
        fired = 0
        now = utcnow()
        while True:
            n_fired = await scheduler.fire_due(now)
            if not n_fired:
                break
            fired += n_fired
        elapsed = time.perf_counter() - start
        async with sm() as s:
            sent = await s.scalar(select(func.count()).select_from(OutboxItem))
            timers = await s.scalar(select(func.count()).select_from(Timer))
            await s.commit()
    finally:
        await engine.dispose()
    assert fired == due and sent == due, (fired, sent, due)
    return {"complaints": n, "timers": timers, "fired": fired, "seconds": round(elapsed, 3),
            "ms_per_fired": round(elapsed * 1000 / fired, 4), "seed_seconds": round(seeded, 1), "plan": plan}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--due", type=int, default=2000)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--cache-mb", type=int, default=0,
                    help="SQLite page cache per connection in MiB (default: SQLite's 2 MiB)")
    ap.add_argument("--url", help="a PostgreSQL URL (an empty database); default: temporary SQLite files")
    args = ap.parse_args()
    configure(Keyring(os.urandom(32)))
    sizes = [int(x) for x in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.url:   # warm-up (statement caches, imports), not measured
            warm = f"sqlite+aiosqlite:///{tmp}/warm.db"
            await asyncio.to_thread(upgrade, warm)
            await run_size(warm, 500, 100)
        for n in sizes:
            url = args.url or f"sqlite+aiosqlite:///{tmp}/timers-{n}.db"
            if args.url:
                await _reset_pg(url)
            await asyncio.to_thread(upgrade, url)
            r = await run_size(url, n, args.due, args.cache_mb)
            results.append(r)
            print(f"{n:>7} complaints, {r['timers']:>7} timers: fired {r['fired']} in {r['seconds']} s "
                  f"= {r['ms_per_fired']} ms per timer (claim plan: {r['plan']})", file=sys.stderr)
    small, large = results[0], results[-1]
    line = {"bench": "timers", "engine": "postgresql" if args.url else "sqlite", "due": args.due,
            "cache_mb": args.cache_mb or None,
            f"ms_per_fired_{small['complaints'] // 1000}k": small["ms_per_fired"],
            f"ms_per_fired_{large['complaints'] // 1000}k": large["ms_per_fired"],
            "growth": round(large["ms_per_fired"] / small["ms_per_fired"], 3),
            "timers_small": small["timers"], "timers_large": large["timers"],
            "index_used": all("ix_timers_due" in r["plan"] for r in results)}
    print(json.dumps(line))


async def _reset_pg(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
