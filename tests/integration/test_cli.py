"""The `kesu` command line, run as a newcomer would (real processes, SQLite)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, model_dir):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    e.update(KESU_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'kesu.db'}", KESU_MODEL_DIR=model_dir,
             KESU_KEY_FILE=str(tmp_path / "kesu.key"))
    return e


def kesu(env, *args, check=True):
    p = subprocess.run([sys.executable, "-m", "intake", "--log-level", "WARNING", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_migrate_agent_add_complaint_add_and_classify(env, tmp_path):
    assert "up to date" in kesu(env, "migrate").stdout
    agent = json.loads(kesu(env, "agent", "add", "--name", "li", "--role", "supervisor", "--department", "QA").stdout)
    assert agent["role"] == "supervisor" and agent["department"] == "QA" and agent["token"].startswith("kesu_")
    dup = kesu(env, "agent", "add", "--name", "li", "--role", "agent", check=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    out = json.loads(kesu(env, "complaint", "add", "--text", "吃了你们的面包拉肚子住院了", "--phone", "13812345678").stdout)
    assert re.fullmatch(r"\d{8}-[A-Z]+-0001", out["number"]) and out["status"] == "done"
    suggestion = json.loads(kesu(env, "classify", "外卖里吃出虫子").stdout)
    assert suggestion["urgency"] == "P0" and suggestion["reasons"]
    assert (tmp_path / "kesu.key").stat().st_mode & 0o777 == 0o600


def test_invalid_setting_stops_with_its_name(env):
    p = kesu({**env, "KESU_HTTP_PORT": "http"}, "migrate", check=False)
    assert p.returncode == 2 and "http_port" in p.stderr


def test_model_list_shows_the_current_version(env):
    versions = [json.loads(line) for line in kesu(env, "model", "list").stdout.splitlines()]
    assert sum(v["current"] for v in versions) == 1


def test_serve_creates_first_admin_and_answers(env, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "intake", "serve"], env={**env, "KESU_HTTP_PORT": str(port)},
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "is running on" in line or proc.poll() is not None:
                break
        text = "".join(lines)
        assert "one-time password" in text, text[-3000:]
        token = re.search(r"API token \(shown once\): (\S+)", text).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.load(r)["status"] == "ok"
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/complaints", method="POST",
            data=json.dumps({"channel": "phone", "text": "宽带断网三天了没人修", "customer": {"phone": "13900001111"}}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 201 and json.load(r)["number"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
