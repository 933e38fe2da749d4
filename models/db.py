"""Engine and session factory for SQLite (embedded) and PostgreSQL (shared by many processes)."""
from __future__ import annotations

import asyncio
import weakref

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def make_engine(url: str, **kwargs) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_setup(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _sqlite_setup(engine: AsyncEngine) -> None:
    # The driver's own transaction handling is off so that SAVEPOINTs work and every
    # transaction starts with BEGIN IMMEDIATE: one writer at a time, no lock-upgrade
    # deadlocks between the worker, the dispatcher and the connectors.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")   # durable across process crashes in WAL mode
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class _NoGate:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None

    async def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


_NO_GATE = _NoGate()
_gates: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def write_gate(engine_or_sessionmaker):
    """An in-process lock for the writers of one SQLite database (a no-op on PostgreSQL).

    SQLite has one write lock; writers that meet at it wait in the driver's busy handler, which
    sleeps in steps of up to 100 ms. Queueing on an asyncio lock first hands the database over
    at once. Hold it for one transaction only, and never while awaiting another component."""
    engine = getattr(engine_or_sessionmaker, "kw", {}).get("bind", engine_or_sessionmaker)
    if engine is None or not is_sqlite(engine):
        return _NO_GATE
    sync = engine.sync_engine
    gate = _gates.get(sync)
    if gate is None:
        gate = _gates[sync] = asyncio.Lock()
    return gate
