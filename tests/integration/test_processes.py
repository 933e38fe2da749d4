"""Several real kesu processes on one database: shared work, and kill -9 in the middle."""
from __future__ import annotations

import asyncio
import base64
import csv
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from connectors.base import InboundMessage, Sender
from intake.inbox import Inbox
from models import Complaint, InboxItem, OutboxItem, make_engine, make_sessionmaker
from tests.conftest import TEST_KEY
from workflow.organisation import ensure_defaults

ROOT = Path(__file__).resolve().parents[2]
N = 1000


def texts(n: int) -> list[str]:
    with open(ROOT / "classifier" / "data" / "complaints.csv", encoding="utf-8") as fh:
        rows = [r["text"] for r in csv.DictReader(fh)]
    return [rows[i % len(rows)] for i in range(n)]


async def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    inbox = Inbox(sm)
    async with sm() as s:
        await ensure_defaults(s)
        for i, text in enumerate(texts(n)):
            msg = InboundMessage(channel="email", external_id=f"<{i}@customers.example>",
                                 sender=Sender(f"c{i}@customers.example", email=f"c{i}@customers.example"),
                                 text=text, received_at=datetime.now(timezone.utc),
                                 reply_to={"address": f"c{i}@customers.example"})
            await inbox.accept_in(s, msg)
        await s.commit()
    await engine.dispose()


def env_for(url: str, model_dir: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    env.update(KESU_DATABASE_URL=url, KESU_MODEL_DIR=model_dir, KESU_SECRET_KEY=base64.b64encode(TEST_KEY).decode(),
               KESU_KEY_FILE=str(tmp_path / "unused.key"), KESU_SMTP_HOST="127.0.0.1", KESU_SMTP_PORT="9",
               KESU_SMTP_FROM="service@kesu.example", KESU_SMTP_TLS="none")
    return env


def start_worker(env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "intake", "--log-level", "WARNING", "work", *extra], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


async def check_exactly_once(url: str, n: int) -> None:
    """Every item done once, one complaint and one acknowledgement each, serials without gaps."""
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        statuses = dict((await s.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status))).all())
        assert statuses == {"done": n}
        numbers = (await s.scalars(select(Complaint.number))).all()
        assert len(numbers) == n and len(set(numbers)) == n
        linked = (await s.scalars(select(InboxItem.complaint_id))).all()
        assert len(set(linked)) == n and None not in linked
        serials = defaultdict(list)
        for number in numbers:
            day, dept, serial = number.split("-")
            serials[(day, dept)].append(int(serial))
        for key, got in serials.items():
            assert sorted(got) == list(range(1, len(got) + 1)), f"gap or duplicate in {key}"
        acks = (await s.scalars(select(OutboxItem.dedupe_key).where(OutboxItem.kind == "ack"))).all()
        assert len(acks) == n and len(set(acks)) == n
    await engine.dispose()


async def test_two_worker_processes_share_1000_items_on_postgresql(pg_url, model_dir, tmp_path):
    await seed(pg_url, N)
    env = env_for(pg_url, model_dir, tmp_path)
    procs = [start_worker(env, "--until-empty") for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err.decode()[-2000:]
    processed = [int(out.decode().strip().splitlines()[-1].split(":")[1].strip(" }")) for out, _ in outputs]
    assert sum(processed) == N
    await check_exactly_once(pg_url, N)


async def test_kill_9_mid_batch_then_restart_processes_each_item_once(db_url, model_dir, tmp_path):
    url = db_url
    await seed(url, N)
    env = env_for(url, model_dir, tmp_path)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    victim = start_worker(env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            async with sm() as s:
                done = await s.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.status == "done"))
                await s.commit()
            if done >= N // 4:
                break
            await asyncio.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    async with sm() as s:
        done = await s.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.status == "done"))
        complaints = await s.scalar(select(func.count()).select_from(Complaint))
    await engine.dispose()
    assert 0 < done < N, "the kill must land in the middle of the run"
    assert complaints == done   # nothing half-committed
    again = start_worker(env, "--until-empty")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err.decode()[-2000:]
    await check_exactly_once(url, N)
