"""SQLite as kesu's embedded database: connections, pragmas and how a transaction begins.

aiosqlite runs every call (execute, fetch, close...) on a thread of its own and hands the
result back to the event loop: about 80 µs a hand-off, while the call itself usually takes a
few µs. A registration makes some 150 such calls, so the hand-offs cost more than the work.
kesu's transactions are short and go one writer at a time behind the write gate, so here the
calls run on the event loop's thread instead. The one wait that can be long, for another
process's write lock, is done by sleeping on the loop (`begin_immediate`), never inside SQLite;
the one slow step, copying the WAL back into the database file, runs on a thread of its own
(`Checkpoints`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from functools import partial
from typing import Any
from urllib.parse import quote

import aiosqlite
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

READ_ONLY = "kesu_read_only"      # execution option of read sessions (models.db.read_session)
LOCK_WAIT = 30.0                  # seconds to wait for another process's write lock
BUSY_MS = 20                      # SQLite's own busy wait: only for momentary locks (checkpoints)
CHECKPOINT_EVERY = 1.0            # seconds between WAL checkpoints of a database being written

log = logging.getLogger(__name__)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the caller's (the event loop's) thread."""

    async def _execute(self, fn, *args, **kwargs):
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def connect_inline(database: Any, **kwargs: Any) -> InlineConnection:
    """aiosqlite.connect, with the connection used from the loop's thread afterwards."""
    kwargs["check_same_thread"] = False     # opened on aiosqlite's thread, used on the loop's
    conn = InlineConnection(partial(sqlite3.connect, str(database), **kwargs), iter_chunk_size=64)
    conn._thread.daemon = True
    return conn


def connect_args() -> dict[str, Any]:
    return {"async_creator_fn": connect_inline}


def setup(engine: AsyncEngine) -> None:
    # The driver's own transaction handling is off so that SAVEPOINTs work and every writing
    # transaction starts with BEGIN IMMEDIATE: one writer at a time, no lock-upgrade deadlocks
    # between the worker, the dispatcher and the connectors.
    database = engine.url.database
    plain_file = database and database != ":memory:" and not database.startswith("file:")
    path = os.path.abspath(database) if plain_file else None     # else SQLite checkpoints by itself

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        cur.execute("PRAGMA journal_mode")
        if cur.fetchone()[0].lower() != "wal":      # set once per database file; it persists
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")   # durable across process crashes in WAL mode
        cur.execute("PRAGMA foreign_keys=ON")
        if path is not None:
            cur.execute("PRAGMA wal_autocheckpoint=0")     # done off the loop by `checkpoints`
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(READ_ONLY):
            # A reader begins DEFERRED: in WAL mode it neither takes nor waits for the write
            # lock, and sees the last commit.
            _run(conn, "BEGIN")
            return
        begin_immediate(conn)

    if path is not None:
        @event.listens_for(engine.sync_engine, "commit")
        def _commit(conn):
            if not conn.get_execution_options().get(READ_ONLY):
                checkpoints.written(path)


def _run(conn, sql: str) -> None:
    """Run a statement without results (BEGIN) on the DB-API cursor. Every transaction begins
    with one; SQLAlchemy's execution machinery around it (execution context, events, result)
    costs several times what SQLite takes to run it."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    except sqlite3.Error as exc:     # raised as SQLAlchemy raises database errors everywhere else
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc
    finally:
        cursor.close()


def begin_immediate(conn) -> None:
    """Take the write lock; while another process holds it, sleep on the event loop (so this
    process keeps serving) and try again, for up to LOCK_WAIT seconds."""
    deadline = time.monotonic() + LOCK_WAIT
    delay = 0.002
    while True:
        try:
            _run(conn, "BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, 0.1)


class Checkpoints:
    """WAL checkpoints on a thread of their own, for the SQLite databases this process writes.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages: it
    copies them into the database file and syncs both files, 20-50 ms on a busy machine, all
    that time with the event loop stopped (in the webhook benchmark, once every ~800 messages).
    kesu's connections switch it off; this thread runs a PASSIVE checkpoint, which neither
    waits for nor blocks readers and writers, every CHECKPOINT_EVERY seconds on each database
    written to since the last one. sqlite3 lets go of the GIL while it works, so the loop goes
    on serving. When the last connection to a database closes, SQLite checkpoints it as before.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)    # a forked child starts a thread of its own

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._written: set[str] = set()
        self._thread: threading.Thread | None = None

    def written(self, path: str) -> None:
        """A transaction is about to commit on the database at `path`."""
        with self._lock:
            self._written.add(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        previous: set[str] = set()
        while True:
            time.sleep(CHECKPOINT_EVERY)
            with self._lock:
                paths, self._written = self._written, set()
            for path in paths | previous:     # twice: a COMMIT lands just after its mark was taken
                self.checkpoint(path)
            previous = paths

    @staticmethod
    def checkpoint(path: str) -> None:
        try:
            # mode=rw: a database deleted meanwhile is not created anew
            conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, check_same_thread=False)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error as exc:     # another process checkpointing: it does the work
            level = logging.DEBUG if "locked" in str(exc) or "busy" in str(exc) else logging.WARNING
            log.log(level, "WAL checkpoint of %s failed: %s", path, exc)


checkpoints = Checkpoints()
