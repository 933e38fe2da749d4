"""`kesu report`, `alerts`, `archive`, `purge` and `customer` as real processes on a SQLite database."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from models import Complaint, make_engine, make_sessionmaker
from tests.conftest import TEST_KEY
from tests.integration.test_report_figures import SECRET_NAME, seed_fixed_month
from tests.integration.test_retention_purge import OLD_TEXT
from tests.integration.test_retention_purge import seed as seed_retention
from workflow.organisation import ensure_defaults
from workflow.retention import ERASED, latest_cutoff

ROOT = Path(__file__).resolve().parents[2]


def _seed(url: str, *seeders) -> None:
    async def run():
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            await ensure_defaults(session)
            for seeder in seeders:
                await seeder(session)
            await session.commit()
        await engine.dispose()
    asyncio.run(run())


@pytest.fixture
def env(sqlite_url, tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    e.update(KESU_DATABASE_URL=sqlite_url, KESU_SECRET_KEY=base64.b64encode(TEST_KEY).decode(),
             KESU_KEY_FILE=str(tmp_path / "unused.key"))
    return e


def kesu(env, *args, code=0):
    p = subprocess.run([sys.executable, "-m", "intake", "--log-level", "WARNING", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == code, p.stderr[-3000:]
    return p


def test_report_in_every_format_and_kept(env, sqlite_url, tmp_path):
    _seed(sqlite_url, seed_fixed_month)
    figures = json.loads(kesu(env, "report", "--month", "2026-10").stdout)
    assert figures["volume"]["total"] == 8 and figures["remedies"]["amount_cents"] == 46800
    xlsx, html = tmp_path / "r.xlsx", tmp_path / "r.html"
    kesu(env, "report", "--month", "2026-10", "--format", "xlsx", "--out", str(xlsx))
    assert load_workbook(xlsx)["概览"]["B4"].value == 8
    kesu(env, "report", "--month", "2026-10", "--format", "html", "--out", str(html), "--keep")
    text = html.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 4 and SECRET_NAME not in text
    assert "must be" not in kesu(env, "report", "--month", "2026-13", code=2).stdout
    assert "needs --out" in kesu(env, "report", "--format", "xlsx", code=2).stderr


def test_purge_refused_inside_retention_then_archive_and_purge(env, sqlite_url, tmp_path):
    _seed(sqlite_url, seed_retention)
    from datetime import datetime, timezone
    too_young = latest_cutoff(datetime.now(timezone.utc), 3).replace(day=1)
    too_young = too_young.replace(year=too_young.year + 1).isoformat()
    refused = kesu(env, "purge", "--before", too_young, "--yes", code=1)
    assert "retention period" in refused.stderr
    assert "retention period" in kesu(env, "archive", "--before", too_young, "--out", str(tmp_path / "x.gz"),
                                      code=1).stderr
    assert json.loads(kesu(env, "purge", "--before", "2023-01-01").stdout)["would_purge"] == 2
    out = tmp_path / "kesu-archive.jsonl.gz"
    archived = json.loads(kesu(env, "archive", "--before", "2023-01-01", "--out", str(out)).stdout)
    assert archived["complaints"] == 2 and archived["rows"]["complaints"] == 2
    lines = [json.loads(line) for line in kesu(env, "archive", "--inspect", str(out)).stdout.splitlines()]
    assert lines[0]["manifest"]["complaints"] == 2 and lines[-1]["end"]["sha256"] == archived["sha256"]
    rows = [json.loads(line) for line in kesu(env, "archive", "--inspect", str(out), "--decrypt").stdout.splitlines()]
    assert OLD_TEXT in [r["row"]["text"] for r in rows if r.get("table") == "complaints"]
    purged = json.loads(kesu(env, "purge", "--before", "2023-01-01", "--yes").stdout)
    assert purged["complaints"] == 2

    async def texts():
        engine = make_engine(sqlite_url)
        async with make_sessionmaker(engine)() as session:
            out = dict((await session.execute(select(Complaint.number, Complaint.text))).all())
        await engine.dispose()
        return out
    assert asyncio.run(texts())["OLD-1"] == ERASED


def test_customer_export_and_erase(env, sqlite_url, tmp_path):
    _seed(sqlite_url, seed_retention)
    out = tmp_path / "lisi.json"
    kesu(env, "customer", "export", "--phone", "13700001111", "--out", str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert exported["customer"]["name"] == "李四" and exported["complaints"][0]["text"] == OLD_TEXT
    assert "--yes" in kesu(env, "customer", "erase", "--phone", "13700001111", code=2).stderr
    assert "NEW-2" in kesu(env, "customer", "erase", "--phone", "13600002222", "--yes", code=1).stderr
    assert json.loads(kesu(env, "customer", "erase", "--email", "lisi@example.com", "--yes").stdout)["erased"]
    assert "no such customer" in kesu(env, "customer", "export", "--phone", "13700001111", code=1).stderr


def test_alerts_check_and_list(env, sqlite_url):
    from tests.integration.test_report_spikes import seed_series
    _seed(sqlite_url, seed_series)
    assert kesu(env, "alerts").stdout == ""
    kesu(env, "alerts", "--check", "--day", "2026-10-29")
    alerts = [json.loads(line) for line in kesu(env, "alerts", "--since", "2026-10-01").stdout.splitlines()]
    assert sorted((a["dimension"], a["value"], a["count"]) for a in alerts) == [
        ("category", "product_quality", 13), ("product", "水壶X", 9)]
    kesu(env, "alerts", "--check", "--day", "2026-10-29")
    assert len(kesu(env, "alerts").stdout.splitlines()) == 2          # the same spike does not alert twice
    assert "must be a date" in kesu(env, "alerts", "--since", "yesterday", code=1).stderr
