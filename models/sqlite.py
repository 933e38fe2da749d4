"""SQLite as kesu's embedded database: connections, pragmas and how a transaction begins.

aiosqlite runs every call (execute, fetch, close...) on a thread of its own and hands the
result back to the event loop: about 80 µs a hand-off, while the call itself usually takes a
few µs. A registration makes some 150 such calls, so the hand-offs cost more than the work.
kesu's transactions are short and go one writer at a time behind the write gate, so here the
calls run on the event loop's thread instead. The one wait that can be long, for another
process's write lock, is done by sleeping on the loop (`begin_immediate`), never inside SQLite.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

READ_ONLY = "kesu_read_only"      # execution option of read sessions (models.db.read_session)
LOCK_WAIT = 30.0                  # seconds to wait for another process's write lock
BUSY_MS = 20                      # SQLite's own busy wait: only for momentary locks (checkpoints)


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
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(READ_ONLY):
            # A reader begins DEFERRED: in WAL mode it neither takes nor waits for the write
            # lock, and sees the last commit.
            _run(conn, "BEGIN")
            return
        begin_immediate(conn)


def _run(conn, sql: str) -> None:
    """Run a statement without results (BEGIN) on the DB-API cursor. Every transaction begins
    with one; SQLAlchemy's execution machinery around it (execution context, events, result)
    costs several times what SQLite takes to run it."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
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
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, 0.1)
