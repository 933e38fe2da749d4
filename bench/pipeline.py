"""Pipeline throughput: real complaint texts through accept → pipeline → outbox on SQLite.

Prints complaints/s and its ratio to the bare rate of `classifier.suggest_many` on the same
texts, measured in the same run (the machine is noisy; only the ratio is comparable).
With --mail the texts arrive as raw GB2312/UTF-8 mail committed unread, as the IMAP poller
commits it, so the worker's full MIME reading is part of the figure.
Usage: python bench/pipeline.py [--n 5000] [--mail]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "corpora"


def load_texts(n: int) -> list[str]:
    texts: list[str] = []
    for name, column in (("waimai_10k.csv", "review"), ("online_shopping_10_cats.csv", "review")):
        with open(DATA / name, encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                if row.get("label") == "0" and row[column].strip():   # negative reviews: complaint-like
                    texts.append(row[column].strip().lstrip("\ufeff"))
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def as_unread_mail(texts: list[str], now: datetime) -> list:
    from connectors.email.deferred import peek, unread_message
    from tests.email_servers import complaint_mail
    raws = [complaint_mail(i, t) for i, t in enumerate(texts)]
    return [unread_message(raw, peek(raw), received_at=now, meta={"mailbox": "bench", "uid": i})
            for i, raw in enumerate(raws)]


async def run(n: int, mail: bool = False) -> dict:
    from classifier import Classifier, ensure_default_model
    from connectors.base import InboundMessage, Sender
    from intake.runtime import Runtime
    from intake.settings import Settings
    from models.migrate import upgrade_async

    texts = load_texts(n)
    tmp = Path(tempfile.mkdtemp(prefix="kesu-bench-"))
    model_dir = os.environ.get("KESU_MODEL_DIR") or str(tmp / "models")
    ensure_default_model(model_dir)
    clf = Classifier.load(model_dir)

    clf.suggest_many(texts[:200])   # warm up
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        clf.suggest_many(texts[i:i + 64])
    classifier_per_s = len(texts) / (time.perf_counter() - t0)

    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade_async(url)
    settings = Settings(database_url=url, key_file=str(tmp / "kesu.key"), model_dir=model_dir,
                        smtp=None, worker_batch=64)
    rt = await Runtime.open(settings, classifier=clf)
    rt.services.outbound_channels = frozenset({"email"})   # acknowledgements are queued as in production
    try:
        now = datetime.now(timezone.utc)
        messages = [InboundMessage(channel="email", external_id=f"<bench-{i}@example.com>",
                                   sender=Sender(f"customer{i}@example.com", email=f"customer{i}@example.com"),
                                   text=t, received_at=now, raw=t.encode(),
                                   reply_to={"address": f"customer{i}@example.com"})
                    for i, t in enumerate(texts)] if not mail else as_unread_mail(texts, now)
        t0 = time.perf_counter()
        # Connectors accept concurrently (many mailboxes, chats, webhook requests): 32 at a time.
        for i in range(0, len(messages), 32):
            await asyncio.gather(*(rt.inbox.accept(m) for m in messages[i:i + 32]))
        accept_s = time.perf_counter() - t0
        while await rt.worker.run_once():
            pass
        kesu_s = time.perf_counter() - t0
    finally:
        await rt.close()
    kesu_per_s = len(texts) / kesu_s
    return {"complaints": len(texts), "input": "unread mail" if mail else "messages", "kesu_per_s": round(kesu_per_s, 1),
            "accept_per_s": round(len(texts) / accept_s, 1),
            "classifier_per_s": round(classifier_per_s, 1), "ratio": round(kesu_per_s / classifier_per_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--mail", action="store_true", help="the texts as raw mail committed unread")
    args = parser.parse_args()
    figures = asyncio.run(run(args.n, args.mail))
    print(f"{figures['complaints']} complaints: kesu {figures['kesu_per_s']}/s end to end "
          f"(accept alone {figures['accept_per_s']}/s), bare classifier {figures['classifier_per_s']}/s, "
          f"ratio {figures['ratio']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
