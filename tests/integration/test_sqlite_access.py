"""SQLite access: the write gate's two lanes, readers beside the writer, waiting for another
process's write lock without stalling the event loop, and WAL checkpoints off the loop."""
import asyncio
import os
import sqlite3

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from models import InboxItem, make_engine, make_sessionmaker, read_session, write_gate
from models import sqlite as kesu_sqlite
from models.db import WriteGate


async def test_foreground_writers_go_before_queued_background_ones():
    gate = WriteGate()
    order: list[str] = []
    await gate.acquire()                      # someone is writing

    async def writer(name: str, background: bool):
        await gate.acquire(background=background)
        order.append(name)
        await asyncio.sleep(0)
        gate.release()

    tasks = [asyncio.create_task(writer("worker", True)), asyncio.create_task(writer("outbox", True))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(writer("chat", False)), asyncio.create_task(writer("webhook", False))]
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["chat", "webhook", "worker", "outbox"]
    assert not gate.locked()


async def test_background_gets_its_turn_under_a_stream_of_foreground_writers():
    gate = WriteGate()
    order: list[str] = []
    await gate.acquire()

    async def writer(name: str, background: bool):
        await gate.acquire(background=background)
        order.append(name)
        gate.release()

    tasks = [asyncio.create_task(writer("worker", True))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(writer(f"chat{i}", False)) for i in range(3 * WriteGate.fair_share)]
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*tasks)
    assert order.index("worker") == WriteGate.fair_share


async def test_a_cancelled_waiter_does_not_keep_the_gate():
    gate = WriteGate()
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire(background=True))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release()
    assert not gate.locked()
    await asyncio.wait_for(gate.acquire(), 1)


async def test_a_waiter_cancelled_just_before_the_gate_passes_it_by_stays_cancelled():
    # The holder releases after the cancel but before the waiter's task has run: the released gate
    # skips the cancelled waiter, which must still end cancelled (a shutdown waits for it).
    gate = WriteGate()
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire(background=True))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not gate.locked()
    await asyncio.wait_for(gate.acquire(), 1)


async def test_a_reader_runs_while_the_writer_holds_the_lock(sqlite_url):
    engine = make_engine(sqlite_url)
    sm = make_sessionmaker(engine)
    try:
        async with write_gate(sm), sm() as writer:
            await writer.execute(text("UPDATE inbox_items SET attempts = attempts + 1"))   # holds the write lock
            async with read_session(sm) as reader:
                rows = await asyncio.wait_for(reader.scalars(select(InboxItem)), 2)
                assert rows.all() == []
                await reader.commit()
            await writer.commit()
    finally:
        await engine.dispose()


async def test_waiting_for_another_process_s_write_lock_keeps_the_loop_serving(sqlite_url):
    engine = make_engine(sqlite_url)
    sm = make_sessionmaker(engine)
    async with read_session(sm) as session:      # kesu has opened the database (WAL from now on)
        await session.execute(text("SELECT 1"))
    path = sqlite_url.split(":///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)      # another process, as far as SQLite knows
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write():
        async with sm() as session:
            await session.execute(text("UPDATE inbox_items SET attempts = attempts + 1"))
            await session.commit()

    clock = asyncio.create_task(ticker())
    try:
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        assert not writing.done()             # still waiting for the lock...
        assert ticks >= 20                    # ...while the loop went on serving
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 5)    # and it goes ahead once the lock is free
    finally:
        clock.cancel()
        other.close()
        await engine.dispose()


async def test_the_wal_is_copied_into_the_database_file_by_a_thread_not_by_a_commit(sqlite_url, monkeypatch):
    monkeypatch.setattr(kesu_sqlite, "CHECKPOINT_EVERY", 0.05)
    engine = make_engine(sqlite_url)
    sm = make_sessionmaker(engine)
    path = sqlite_url.split(":///", 1)[1]
    try:
        async with write_gate(sm), sm() as session:
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await session.execute(text("CREATE TABLE filler (data BLOB)"))
            for _ in range(2000):       # some 2 000 pages: past SQLite's own checkpoint at 1 000
                await session.execute(text("INSERT INTO filler VALUES (randomblob(4000))"))
            await session.commit()
        # In WAL mode the database file grows only when a checkpoint copies pages into it.
        committed = os.path.getsize(path)
        assert committed < 2000 * 4000           # the commit itself did not checkpoint
        for _ in range(200):
            if os.path.getsize(path) > 2000 * 4000:
                break
            await asyncio.sleep(0.05)
        assert os.path.getsize(path) > 2000 * 4000, "no checkpoint within 10 s"
        async with read_session(sm) as session:
            assert (await session.execute(text("SELECT count(*) FROM filler"))).scalar() == 2000
    finally:
        await engine.dispose()


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_begin_that_fails_raises_sqlalchemy_s_database_error(sqlite_url, read_only):
    # Not a lock to wait for: the connection is already inside a transaction SQLAlchemy knows nothing of.
    engine = make_engine(sqlite_url)
    try:
        bind = engine.execution_options(**{kesu_sqlite.READ_ONLY: True}) if read_only else engine
        async with bind.connect() as conn:
            raw = await conn.get_raw_connection()
            raw.driver_connection._connection.execute("BEGIN")
            with pytest.raises(OperationalError, match="within a transaction") as failed:
                await conn.execute(text("SELECT 1"))
            assert isinstance(failed.value.orig, sqlite3.OperationalError)
    finally:
        await engine.dispose()
