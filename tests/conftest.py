"""Shared fixtures: an encryption key, and migrated databases (SQLite file, local PostgreSQL)."""
from __future__ import annotations

import asyncio
import base64
import os
import uuid

import pytest
import pytest_asyncio
from sqlalchemy import text

from models import make_engine, make_sessionmaker
from models.crypto import Keyring, configure
from models.migrate import upgrade
from tests.servers import server_missing

TEST_KEY = b"k" * 32
PG_ADMIN_URL = os.environ.get("KESU_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True, scope="session")
def keyring() -> Keyring:
    ring = Keyring(TEST_KEY)
    configure(ring)
    return ring


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kesu.db'}"
    upgrade(url)
    return url


async def _pg_admin(sql: str) -> None:
    import asyncpg
    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database():
    """One PostgreSQL database for the whole test run, made here and dropped at the end."""
    name = f"kesu_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # connection refused, auth...
        server_missing("PostgreSQL on 127.0.0.1:5432", repr(exc))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_database) -> str:
    """The run's PostgreSQL database, emptied before each test."""
    async def _truncate():
        engine = make_engine(pg_database)
        async with engine.begin() as conn:
            tables = (await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
            ))).scalars().all()
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        await engine.dispose()
    asyncio.run(_truncate())
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Run the test on both engines."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest_asyncio.fixture
async def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest_asyncio.fixture
async def sessionmaker(engine):
    from workflow.organisation import ensure_defaults
    sm = make_sessionmaker(engine)
    async with sm() as session:
        await ensure_defaults(session)
        await session.commit()
    return sm


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    """A real classifier model, trained once per test run on the shipped data."""
    from classifier import ensure_default_model
    root = tmp_path_factory.mktemp("models")
    ensure_default_model(root)
    return str(root)


def daemon_settings(db_url: str, tmp_path, **overrides):
    """Settings for a kesu run inside a test: the test key, any free port, files in tmp_path."""
    from intake.settings import Settings
    values = dict(database_url=db_url, http_port=0, secret_key=base64.b64encode(TEST_KEY).decode(),
                  key_file=str(tmp_path / "unused.key"), model_dir=str(tmp_path / "models"))
    return Settings(**{**values, **overrides})
