"""Engine and session factory for SQLite (embedded) and PostgreSQL (shared by many processes)."""
from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from typing import AsyncIterator

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from . import sqlite


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def make_engine(url: str, **kwargs) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args=sqlite.connect_args(), **kwargs)
        sqlite.setup(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def conflict_insert(dialect_name: str, table):
    """insert(table) with the ON CONFLICT clauses of the engine's dialect (PostgreSQL's, else SQLite's)."""
    return (postgresql if dialect_name == "postgresql" else sqlite_dialect).insert(table)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_readers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def read_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """A session for reading only. On SQLite an ordinary transaction begins IMMEDIATE and so
    waits for the single write lock; a reader's transaction begins DEFERRED and runs beside the
    writer. Never write through it."""
    engine = sessionmaker.kw.get("bind")
    if engine is None or not is_sqlite(engine):
        return sessionmaker()
    reader = _readers.get(engine.sync_engine)
    if reader is None:
        reader = _readers[engine.sync_engine] = engine.execution_options(**{sqlite.READ_ONLY: True})
    return sessionmaker(bind=reader)


class WriteGate:
    """The in-process queue for SQLite's single write lock, with two lanes.

    Interactive writers (a chat turn, an API call, a connector accepting a message) go before
    background ones (worker batches, the outbox, timers), so a customer waits for at most the one
    background transaction under way, not for the whole queue. Background work still gets its
    turn after `fair_share` foreground grants in a row, so a busy chat cannot starve the worker."""

    fair_share = 8

    def __init__(self) -> None:
        self._held = False
        self._foreground: deque[asyncio.Future] = deque()
        self._background: deque[asyncio.Future] = deque()
        self._foreground_run = 0

    def locked(self) -> bool:
        return self._held

    async def acquire(self, background: bool = False) -> bool:
        if not self._held and not self._foreground and not self._background:
            self._held = True
            return True
        lane = self._background if background else self._foreground
        waiter = asyncio.get_running_loop().create_future()
        lane.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()          # granted just as we were cancelled: pass it on
            elif waiter in lane:        # else a release() has already dropped it from its lane
                lane.remove(waiter)
            raise
        return True

    def release(self) -> None:
        """Hand the lock straight to the next waiter (it stays held), or free it."""
        lanes = (self._foreground, self._background)
        if self._background and self._foreground_run >= self.fair_share:
            lanes = (self._background, self._foreground)
        for lane in lanes:
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    self._foreground_run = 0 if lane is self._background else self._foreground_run + 1
                    waiter.set_result(True)
                    return
        self._held = False
        self._foreground_run = 0

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc) -> None:
        self.release()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        await self.acquire(background=True)
        try:
            yield
        finally:
            self.release()


class _NoGate:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None

    async def acquire(self, background: bool = False) -> bool:
        return True

    def release(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        yield


_NO_GATE = _NoGate()
_gates: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def write_gate(engine_or_sessionmaker) -> WriteGate | _NoGate:
    """The write gate of one SQLite database (a no-op on PostgreSQL, which has row locks).

    SQLite has one write lock; a writer that finds it taken sleeps and tries again
    (models.sqlite.begin_immediate), in steps of up to 100 ms. Queueing here first hands the
    database over at once. Hold it for one transaction only, and never while awaiting another
    component."""
    engine = getattr(engine_or_sessionmaker, "kw", {}).get("bind", engine_or_sessionmaker)
    if engine is None or not is_sqlite(engine):
        return _NO_GATE
    sync = engine.sync_engine
    gate = _gates.get(sync)
    if gate is None:
        gate = _gates[sync] = WriteGate()
    return gate
