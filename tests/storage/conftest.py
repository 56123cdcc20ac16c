"""Fixtures for storage tests: a migrated SQLite file per test (copied from one template).

With SENTIBOT_TEST_POSTGRES_URL set (e.g. `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`,
a role that may create databases), every test that does not read the SQLite file itself runs on a
fresh PostgreSQL database instead, cloned from one migrated template; the SQLite-only tests are
skipped. CI does not set it (see docs/schema.md, "PostgreSQL").
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import pytest

from storage import repositories as repo
from storage.db import create_engine, create_sessionmaker, upgrade_database

PROBS_POS = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head; each test gets a copy (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    return path


POSTGRES_URL = os.environ.get("SENTIBOT_TEST_POSTGRES_URL")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if POSTGRES_URL and item.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite behaviour (SENTIBOT_TEST_POSTGRES_URL is set)")


@pytest.fixture
def db_path(tmp_path: Path, migrated_template: Path) -> Path:
    if POSTGRES_URL:
        pytest.skip("reads the SQLite file itself (SENTIBOT_TEST_POSTGRES_URL is set)")
    path = tmp_path / "sentibot.db"
    shutil.copyfile(migrated_template, path)
    return path


def _postgres(sql: str) -> None:
    """Run one statement on the server's maintenance database, outside a transaction."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql(sql)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _postgres_url(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template():
    """PostgreSQL mode: one database migrated to head, the template of each test's database."""
    name = f"sentibot_template_{os.getpid()}"
    _postgres(f"DROP DATABASE IF EXISTS {name}")
    _postgres(f"CREATE DATABASE {name}")
    asyncio.run(upgrade_database(_postgres_url(name)))
    yield name
    _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(request: pytest.FixtureRequest):
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{request.getfixturevalue('db_path')}"
        return
    yield from _postgres_database(request)


@pytest.fixture
def other_db_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path):
    """A second migrated database, on the same backend as `db_url` (to compare two ways)."""
    if not POSTGRES_URL:
        path = tmp_path / "other.db"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    yield from _postgres_database(request)


def _postgres_database(request: pytest.FixtureRequest):
    template = request.getfixturevalue("postgres_template")
    name = f"sentibot_test_{uuid.uuid4().hex[:12]}"
    _postgres(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield _postgres_url(name)
    _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def engine(db_url: str):
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sm(engine):
    return create_sessionmaker(engine)


async def record(
    session,
    *,
    chat_id: int = -100,
    user_id: int | None = 11,
    tg_id: int | None = None,
    text: str = "hello there",
    probs: dict[str, float] | None = None,
    version: str = "v0001",
    chat_type: str = "group",
):
    """Record one scored message with sensible defaults; returns RecordedMessage."""
    probs = probs or PROBS_POS
    label = max(probs, key=probs.get)
    return await repo.record_scored_message(
        session,
        chat_id=chat_id,
        chat_type=chat_type,
        user_id=user_id,
        text=text,
        model_version=version,
        label=label,
        confidence=probs[label],
        probs=probs,
        telegram_message_id=tg_id,
        username=f"user{user_id}" if user_id is not None else None,
    )
