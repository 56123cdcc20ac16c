"""Alembic migrations: from empty, round trip, matches the models, refuses newer databases."""

from __future__ import annotations

import sqlite3

import pytest

from storage.db import (
    check_database,
    create_engine,
    create_sessionmaker,
    downgrade_database,
    upgrade_database,
)
from storage.errors import DatabaseTooNewError, DatabaseUnreachableError
from storage.models import Base
from tests.storage.conftest import record

TABLES = {
    "users",
    "chats",
    "messages",
    "predictions",
    "labels",
    "label_history",
    "queue_skips",
    "model_versions",
    "training_runs",
    "audit_log",
}


def tables(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {r[0] for r in rows} - {"alembic_version", "sqlite_sequence"}
    finally:
        conn.close()


def url_of(path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_upgrade_from_empty_creates_the_folder_and_tables(tmp_path):
    path = tmp_path / "new" / "folder" / "s.db"
    state = await upgrade_database(url_of(path))
    assert state.up_to_date and state.current == state.head
    assert tables(path) == TABLES
    again = await upgrade_database(url_of(path))  # idempotent
    assert again.current == state.current
    assert (await check_database(url_of(path))).up_to_date


async def test_engine_pragmas(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    engine = create_engine(url_of(path), busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            values = {
                p: (await conn.exec_driver_sql(f"PRAGMA {p}")).scalar()
                for p in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 1234,
        "synchronous": 1,
    }


async def test_downgrade_upgrade_round_trip(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    down = await downgrade_database(url_of(path), "base")
    assert down.current is None and tables(path) == set()
    await upgrade_database(url_of(path))
    assert tables(path) == TABLES
    engine = create_engine(url_of(path))
    try:
        async with create_sessionmaker(engine).begin() as s:  # the schema is usable again
            assert (await record(s, tg_id=1)).message_id == 1
    finally:
        await engine.dispose()


async def test_a_0001_database_with_data_upgrades_to_the_queue_index(tmp_path):
    path = tmp_path / "s.db"
    assert (await upgrade_database(url_of(path), "0001")).current == "0001"
    engine = create_engine(url_of(path))
    try:
        async with create_sessionmaker(engine).begin() as s:
            await record(s, tg_id=1)
    finally:
        await engine.dispose()
    assert (await check_database(url_of(path))).up_to_date is False
    state = await upgrade_database(url_of(path))
    assert state.up_to_date and state.current == "0002"
    conn = sqlite3.connect(path)
    try:
        index = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_predictions_version_margin'"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM predictions").fetchone()[0] == 1
    finally:
        conn.close()
    assert index is not None and "model_version, margin, message_id" in index[0]
    down = await downgrade_database(url_of(path), "0001")
    assert down.current == "0001"


async def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    engine = create_engine(url_of(path))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseTooNewError, match="9999_from_the_future.*newer sentibot"):
        await upgrade_database(url_of(path))
    with pytest.raises(DatabaseTooNewError):
        await check_database(url_of(path))


@pytest.mark.parametrize(
    "make_url",
    [
        lambda tmp: "not a url",
        lambda tmp: "nosuchdialect+driver://x/y",
        lambda tmp: f"sqlite+aiosqlite:///{tmp}",  # a folder, not a file
        lambda tmp: f"sqlite+aiosqlite:///{tmp / 'garbage.db'}",
    ],
)
async def test_unreachable_database_is_one_clear_error(tmp_path, make_url):
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseUnreachableError, match="DATABASE_URL") as info:
        await upgrade_database(make_url(tmp_path))
    assert "\n" not in str(info.value)
