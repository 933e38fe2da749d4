"""Monthly report benchmark: seed N complaints spread over 12 months, time one month's report.

The complaints (with their workflow rows, ~30 % survey answers, ~5 % remedies, ~1 % reopen audit
events) are bulk-inserted straight through the drivers (sqlite3 executemany, asyncpg COPY), not
through the pipeline. Then `monthly_figures` (every figure, all aggregated by the database) is
timed for a mid-year month on SQLite and on PostgreSQL, best of two runs; rendering the Excel and
HTML files from those figures does not depend on the size and is timed once, separately.

Prints seconds per million complaints per engine and, given two sizes, the growth of the time
against the growth of the data (1.0 = linear). The last line is JSON:
{"runs": [{"size", "sqlite_s", "postgres_s", "month_complaints"}...], "render_s", "growth"}.

Usage: python bench/report.py [--size 100000] [--size 1000000] [--no-postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("KESU_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
YEAR = 2025
MONTH = (YEAR, 6)
CHUNK = 50_000
CATEGORIES = {"product_quality": "QA", "logistics": "LG", "service": "CS", "price_refund": "FN",
              "system_fault": "IT", "other": "CS", "non_complaint": "CS"}
CAT_WEIGHTS = [30, 25, 15, 12, 8, 7, 3]
CHANNELS = ["email", "webchat", "wechat", "phone", "walk_in", "webhook:shop"]
REGIONS = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "重庆", "武汉", "西安", "天津", "苏州", "长沙",
           "郑州", "沈阳", "青岛", "宁波", "东莞", "无锡", "厦门", "福州", "济南", "合肥", "昆明", "大连", "哈尔滨",
           "长春", "石家庄", "南宁", "贵阳"]
PRODUCTS = [f"产品{i:04d}" for i in range(2000)]
PRODUCT_WEIGHTS = [1 / (i + 1) for i in range(2000)]          # a few products draw most complaints
RESPONSE_MIN = {"P0": 120, "P1": 240, "P2": 480}
RESOLVE_MIN = {"P0": 1440, "P1": 2880, "P2": 14400}


def generate(start_id: int, n: int, total: int, rnd: random.Random):
    """Rows for complaints, workflow, surveys, remedies and audit events, as plain tuples."""
    t0 = datetime(YEAR, 1, 1, tzinfo=timezone.utc) - timedelta(hours=8)
    span = 365 * 24 * 3600
    cats = rnd.choices(list(CATEGORIES), CAT_WEIGHTS, k=n)
    urgs = rnd.choices(["P0", "P1", "P2"], [5, 25, 70], k=n)
    chans = rnd.choices(CHANNELS, [40, 20, 15, 15, 5, 5], k=n)
    regions = rnd.choices(REGIONS + [None], k=n)
    products = rnd.choices(PRODUCTS + [None], PRODUCT_WEIGHTS + [50], k=n)
    complaints, workflow, surveys, remedies, audits = [], [], [], [], []
    for i in range(n):
        cid = start_id + i
        # ids follow time, as they do in production
        received = t0 + timedelta(seconds=span * (cid - 1) / total + rnd.random() * 60)
        u, cat = urgs[i], cats[i]
        r = rnd.random()
        status = "closed" if r < 0.85 else "in_progress" if r < 0.95 else "registered"
        resp_min = int(rnd.lognormvariate(4.0, 1.0)) if status != "registered" else None
        res_min = int(rnd.lognormvariate(7.0, 1.0)) if status == "closed" else None
        first = received + timedelta(minutes=resp_min) if resp_min is not None else None
        resolved = received + timedelta(minutes=res_min) if res_min is not None else None
        closed = resolved + timedelta(days=3) if resolved else None
        repeat = cid - rnd.randint(1, 50) if cid > 60 and rnd.random() < 0.03 else None
        disputes = 1 if rnd.random() < 0.02 else 0
        complaints.append((cid, f"B{cid:010d}", chans[i], status, cat, u, CATEGORIES[cat], products[i], regions[i],
                           repeat, received, received, received + timedelta(minutes=RESPONSE_MIN[u]),
                           received + timedelta(minutes=RESOLVE_MIN[u]), first, resolved, closed))
        workflow.append((cid, resp_min, RESPONSE_MIN[u] if resp_min is not None else None, res_min,
                         RESOLVE_MIN[u] if res_min is not None else None, disputes))
        if status == "closed" and rnd.random() < 0.3:
            surveys.append((cid, rnd.randint(1, 5), rnd.randint(1, 5), rnd.choice([None, 1, 2, 3, 4, 5]),
                            closed))
        if resolved and rnd.random() < 0.06:
            remedies.append((cid, rnd.choice(["refund", "return", "replacement", "compensation"]),
                             rnd.randint(0, 50_000), CATEGORIES[cat], cat, resolved))
        if disputes and rnd.random() < 0.5:
            audits.append((cid, received + timedelta(days=2)))
    return complaints, workflow, surveys, remedies, audits


COMPLAINT_COLS = ("id", "number", "channel", "status", "category", "urgency", "department_code", "product", "region",
                  "repeat_of_id", "received_at", "registered_at", "response_due", "resolve_due", "first_response_at",
                  "resolved_at", "closed_at")
CONSTANT_COLS = ("category_confidence", "urgency_confidence", "needs_review", "reviewed", "suggestion", "trace",
                 "text", "updated_at")


def constants(ciphertext: bytes, now: datetime, sqlite: bool) -> tuple:
    return (0.9, 0.9, False, False, "{}", "[]", ciphertext, _ts(now) if sqlite else now)


def _ts(value):
    """SQLAlchemy's SQLite storage of a UTC datetime."""
    if value is None:
        return None
    v = value.astimezone(timezone.utc)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def seed_sqlite(path: str, size: int, ciphertext: bytes) -> None:
    now = datetime.now(timezone.utc)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    const = constants(ciphertext, now, True)
    rnd = random.Random(7)
    cols = COMPLAINT_COLS + CONSTANT_COLS
    with con:
        for start in range(1, size + 1, CHUNK):
            c, w, s, r, a = generate(start, min(CHUNK, size - start + 1), size, rnd)
            con.executemany(f"INSERT INTO complaints ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [(*row[:10], *map(_ts, row[10:]), *const) for row in c])
            con.executemany("INSERT INTO complaint_workflow (complaint_id, response_minutes, response_target_minutes, "
                            "resolve_minutes, resolve_target_minutes, disputes, resolutions, progress_sent, "
                            "sla_revision) VALUES (?, ?, ?, ?, ?, ?, 1, 0, 0)", w)
            con.executemany("INSERT INTO survey_responses (complaint_id, channel, efficiency, attitude, solution, "
                            "created_at) VALUES (?, 'email', ?, ?, ?, ?)", [(*x[:4], _ts(x[4])) for x in s])
            con.executemany("INSERT INTO remedies (complaint_id, kind, amount_cents, department_code, category, "
                            "recorded_at) VALUES (?, ?, ?, ?, ?, ?)", [(*x[:5], _ts(x[5])) for x in r])
            con.executemany("INSERT INTO audit_events (complaint_id, actor, action, at) VALUES (?, 'agent:1', "
                            "'reopen', ?)", [(x[0], _ts(x[1])) for x in a])
    con.execute("ANALYZE")
    con.close()


async def seed_postgres(dsn: str, size: int, ciphertext: bytes) -> None:
    import asyncpg
    now = datetime.now(timezone.utc)
    const = constants(ciphertext, now, False)
    rnd = random.Random(7)
    con = await asyncpg.connect(dsn)
    try:
        for start in range(1, size + 1, CHUNK):
            c, w, s, r, a = generate(start, min(CHUNK, size - start + 1), size, rnd)
            await con.copy_records_to_table("complaints", records=[(*row, *const) for row in c],
                                            columns=list(COMPLAINT_COLS + CONSTANT_COLS))
            await con.copy_records_to_table(
                "complaint_workflow", records=[(*x, 1, 0, 0) for x in w],
                columns=["complaint_id", "response_minutes", "response_target_minutes", "resolve_minutes",
                         "resolve_target_minutes", "disputes", "resolutions", "progress_sent", "sla_revision"])
            await con.copy_records_to_table("survey_responses", records=[(x[0], "email", *x[1:]) for x in s],
                                            columns=["complaint_id", "channel", "efficiency", "attitude", "solution",
                                                     "created_at"])
            await con.copy_records_to_table("remedies", records=r, columns=["complaint_id", "kind", "amount_cents",
                                                                             "department_code", "category",
                                                                             "recorded_at"])
            await con.copy_records_to_table("audit_events", records=[(x[0], "agent:1", "reopen", x[1]) for x in a],
                                            columns=["complaint_id", "actor", "action", "at"])
        for table in ("complaints", "survey_responses", "remedies", "audit_events"):
            await con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT coalesce(max(id), 1) FROM {table}))")
        await con.execute("VACUUM ANALYZE")
    finally:
        await con.close()


async def time_report(url: str) -> tuple[float, dict]:
    from models import make_engine, make_sessionmaker
    from workflow.reports import Month, monthly_figures
    engine = make_engine(url)
    best, figures = float("inf"), {}
    try:
        sm = make_sessionmaker(engine)
        for _ in range(2):
            async with sm() as session:
                t0 = time.perf_counter()
                figures = await monthly_figures(session, Month(*MONTH), as_of=datetime(YEAR + 1, 1, 1, tzinfo=timezone.utc))
                best = min(best, time.perf_counter() - t0)
                await session.commit()
    finally:
        await engine.dispose()
    return best, figures


async def prepare(url: str) -> None:
    from models import make_engine, make_sessionmaker
    from models.migrate import upgrade_async
    from workflow.organisation import ensure_defaults
    await upgrade_async(url)
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        await ensure_defaults(session)
        await session.commit()
    await engine.dispose()


async def pg_admin(sql: str) -> None:
    import asyncpg
    con = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg", "postgresql"))
    try:
        await con.execute(sql)
    finally:
        await con.close()


async def run_size(size: int, postgres: bool, tmp: Path) -> dict:
    from models.crypto import Keyring, configure
    ring = Keyring(os.urandom(32))
    configure(ring)
    ciphertext = ring.encrypt("基准测试投诉内容".encode())
    out: dict = {"size": size}

    url = f"sqlite+aiosqlite:///{tmp / f'bench-{size}.db'}"
    await prepare(url)
    t0 = time.perf_counter()
    await asyncio.to_thread(seed_sqlite, str(tmp / f"bench-{size}.db"), size, ciphertext)
    out["sqlite_seed_s"] = round(time.perf_counter() - t0, 1)
    seconds, figures = await time_report(url)
    out["sqlite_s"] = round(seconds, 3)
    out["month_complaints"] = figures["volume"]["total"]
    os.remove(tmp / f"bench-{size}.db")

    if postgres:
        name = f"kesu_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await pg_admin(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            await prepare(url)
            t0 = time.perf_counter()
            await seed_postgres(url.replace("postgresql+asyncpg", "postgresql"), size, ciphertext)
            out["postgres_seed_s"] = round(time.perf_counter() - t0, 1)
            seconds, pg_figures = await time_report(url)
            out["postgres_s"] = round(seconds, 3)
            same = {k: v for k, v in pg_figures.items() if k != "as_of"} == \
                   {k: v for k, v in figures.items() if k != "as_of"}
            out["engines_agree"] = same
        finally:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out["_figures"] = figures
    return out


async def main(sizes: list[int], postgres: bool) -> dict:
    from workflow.reports import render
    tmp = Path(tempfile.mkdtemp(prefix="kesu-report-bench-"))
    runs = []
    for size in sorted(sizes):
        run = await run_size(size, postgres, tmp)
        figures = run.pop("_figures")
        runs.append(run)
        per_m = {k: round(run[f"{k}_s"] * 1_000_000 / size, 2) for k in ("sqlite", "postgres") if f"{k}_s" in run}
        print(f"{size:>9} complaints ({run['month_complaints']} in {MONTH[0]}-{MONTH[1]:02d}): "
              + ", ".join(f"{k} {run[f'{k}_s']:.2f} s ({v:.2f} s per million)" for k, v in per_m.items()),
              flush=True)
    t0 = time.perf_counter()
    render(figures, "xlsx")
    render(figures, "html")
    render_s = round(time.perf_counter() - t0, 2)
    result: dict = {"runs": runs, "render_s": render_s}
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        data = b["size"] / a["size"]
        result["growth"] = {k: {"time": round(b[f"{k}_s"] / a[f"{k}_s"], 2), "data": round(data, 2),
                                "vs_linear": round(b[f"{k}_s"] / a[f"{k}_s"] / data, 2)}
                            for k in ("sqlite", "postgres") if f"{k}_s" in a and f"{k}_s" in b}
        for k, g in result["growth"].items():
            print(f"{k}: {a['size']} -> {b['size']} complaints: time x{g['time']} for data x{g['data']} "
                  f"({g['vs_linear']} of linear)")
    print(f"rendering xlsx + html from the figures: {render_s} s (independent of the size)")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, action="append", help="complaints to seed (repeat for a growth figure); "
                                                               "default 100000")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main(args.size or [100_000], not args.no_postgres))))
