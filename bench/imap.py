"""IMAP ingest benchmark: kesu's poller against a bare aioimaplib fetch of the same mailbox.

    .venv/bin/python -m bench.imap [--messages 1000] [--rounds 3]     (as root: it starts a Dovecot)

A throw-away Dovecot (the tests' recipe) gets N real complaint texts as mail (GB2312 and
UTF-8, plain and HTML, some with attachments), appended over IMAP. Then, in the same run:
- bare: one connection, UID SEARCH, UID FETCH (UID INTERNALDATE BODY.PEEK[]) in batches of
  the poller's size; nothing else.
- kesu: the email channel's poller from connect to the moment every message is committed to
  the inbox (SQLite, encrypted at rest) with the checkpoint, and flagged \\Seen. The poller
  reads only the Message-ID and From headers before the commit; the full MIME reading is the
  intake worker's (connectors/email/deferred.py), measured end to end by bench/pipeline.py.
- bare with kesu's client: the bare fetch again, with the IMAP client the poller uses
  (connectors/email/imap_client.py: aioimaplib reading FETCH responses in linear time). kesu's
  rate against it says what the commit path costs on top of fetching, apart from the client.
Best of --rounds for each. Prints one JSON line: messages, kesu_per_s, bare_per_s, ratio (the
aim: kesu against plain aioimaplib), bare_kesu_client_per_s and ratio_kesu_client.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.email.imap import BATCH, ImapPoller, parse_fetch, uid_set  # noqa: E402
from connectors.email.imap_client import IMAP4  # noqa: E402
from intake.inbox import Inbox  # noqa: E402
from models import make_engine, make_sessionmaker  # noqa: E402
from models.crypto import Keyring, configure  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests.email_servers import Dovecot, close_client, complaint_texts, imap_append  # noqa: E402
from tests.email_servers import complaint_mail as make_mail  # noqa: E402

async def bare_fetch(box, client_class=None) -> tuple[int, float]:
    import aioimaplib
    t0 = time.perf_counter()
    client = (client_class or aioimaplib.IMAP4)(host=box.host, port=box.port, timeout=60)
    try:
        await client.wait_hello_from_server()
        await client.login(box.user, box.password)
        await client.select(box.folder)
        res = await client.uid_search("UID 1:*", charset=None)
        uids = sorted(int(t) for line in res.lines[:-1] for t in bytes(line).split() if t.isdigit())
        got = 0
        for i in range(0, len(uids), BATCH):
            res = await client.uid("fetch", uid_set(uids[i:i + BATCH]), "(UID INTERNALDATE BODY.PEEK[])")
            got += len(parse_fetch(res.lines))
        await client.logout()
    finally:
        close_client(client)
    return got, time.perf_counter() - t0


async def kesu_ingest(box, workdir: Path, n: int, round_no: int) -> tuple[int, float]:
    url = f"sqlite+aiosqlite:///{workdir / f'bench-{round_no}.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    poller = ImapPoller(box, Inbox(sm), sm)
    logging_off()
    async with engine.connect():     # the running daemon's pool has its connection open already
        pass
    t0 = time.perf_counter()
    task = asyncio.create_task(poller.serve_forever())
    try:
        await asyncio.wait_for(poller.caught_up.wait(), 600)
        elapsed = time.perf_counter() - t0
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await engine.dispose()
    return poller.stats["new"], elapsed


def logging_off() -> None:
    import logging
    logging.getLogger("connectors").setLevel(logging.WARNING)
    logging.getLogger("intake").setLevel(logging.WARNING)


async def unseen_all(box) -> None:
    """Reset \\Seen so each kesu round starts from the same mailbox state."""
    import aioimaplib
    client = aioimaplib.IMAP4(host=box.host, port=box.port, timeout=60)
    try:
        await client.wait_hello_from_server()
        await client.login(box.user, box.password)
        await client.select(box.folder)
        await client.uid("store", "1:*", "-FLAGS.SILENT", r"(\Seen)")
        await client.logout()
    finally:
        close_client(client)


async def main_async(n: int, rounds: int) -> dict:
    configure(Keyring(os.urandom(32)))
    root = Path(tempfile.mkdtemp(prefix="kesu-bench-imap-"))
    os.chmod(root, 0o711)
    dovecot = Dovecot(root)
    dovecot.prepare()
    dovecot.start()
    try:
        box = dovecot.settings(dovecot.user(), poll_seconds=30)
        mails = [make_mail(i, t) for i, t in enumerate(complaint_texts(n))]
        for i in range(0, n, 200):
            await imap_append(box, mails[i:i + 200])
        await bare_fetch(box)                                   # warm the server's caches
        bare, same_client, kesu = [], [], []
        for r in range(rounds):
            got, secs = await bare_fetch(box)
            assert got == n, f"bare fetch got {got} of {n}"
            bare.append(n / secs)
            got, secs = await bare_fetch(box, IMAP4)
            assert got == n, f"bare fetch with kesu's client got {got} of {n}"
            same_client.append(n / secs)
            await unseen_all(box)
            got, secs = await kesu_ingest(box, root, n, r)
            assert got == n, f"kesu committed {got} of {n}"
            kesu.append(n / secs)
        kesu_best, bare_best, same_best = max(kesu), max(bare), max(same_client)
        return {"messages": n, "kesu_per_s": round(kesu_best, 1), "bare_per_s": round(bare_best, 1),
                "ratio": round(kesu_best / bare_best, 3),
                "bare_kesu_client_per_s": round(same_best, 1), "ratio_kesu_client": round(kesu_best / same_best, 3)}
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args.messages, args.rounds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
