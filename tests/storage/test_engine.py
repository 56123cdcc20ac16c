"""Engine behaviour: write lock taken at the first statement, released when a connection is
dropped; cancelled units of work."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storage.db import create_engine, create_sessionmaker
from storage.models import Message, Prediction
from tests.storage.conftest import record


@pytest.mark.sqlite_only
async def test_first_statement_takes_the_write_lock(db_url):
    """Every unit of work starts with BEGIN IMMEDIATE, even one that starts with a read, so two
    writers never deadlock on upgrading read locks; another process waits (here: gives up after
    its short busy_timeout)."""
    holder = create_engine(db_url)
    other = create_engine(db_url, busy_timeout_ms=50)
    try:
        async with create_sessionmaker(holder).begin() as s:
            await s.execute(select(func.count()).select_from(Message))  # a read only
            with pytest.raises(OperationalError, match="locked"):
                async with create_sessionmaker(other).begin() as s2:
                    await record(s2, tg_id=1)
        async with create_sessionmaker(other).begin() as s2:  # free again after commit
            await record(s2, tg_id=1)
    finally:
        await holder.dispose()
        await other.dispose()


@pytest.mark.sqlite_only
async def test_a_dropped_connection_releases_the_write_lock_at_once(db_url):
    """A unit of work cancelled between a statement and its rows leaves an unfinished SQLite
    statement behind, and the pool drops that connection. The write lock must go with it, not
    when the garbage collector finds the cursor."""
    engine = create_engine(db_url)
    other = create_engine(db_url, busy_timeout_ms=50)
    try:
        async with create_sessionmaker(engine).begin() as s:
            for i in range(3):
                await record(s, tg_id=i)
        async with engine.connect() as conn:
            await conn.begin()
            unfinished = await conn.stream(select(Message.id))  # rows not read yet
            await conn.invalidate()  # what the pool does with a cancelled connection
            async with create_sessionmaker(other).begin() as s:
                await record(s, tg_id=99)
            del unfinished
    finally:
        await engine.dispose()
        await other.dispose()


async def test_cancelled_writers_leave_whole_units_and_a_working_pool(sm):
    """Tasks cancelled mid unit of work (as on shutdown) leave no half-written unit behind."""

    async def writer(task: int) -> None:
        for i in range(1000):
            async with sm.begin() as s:
                await record(s, user_id=task + 1, tg_id=task * 10_000 + i)

    tasks = [asyncio.create_task(writer(t)) for t in range(4)]
    await asyncio.sleep(0.3)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    async with sm.begin() as s:  # the pool still hands out a usable connection
        await record(s, tg_id=99_999_999)
    async with sm() as s:
        n_messages = await s.scalar(select(func.count()).select_from(Message))
        n_predictions = await s.scalar(select(func.count()).select_from(Prediction))
    assert n_messages == n_predictions and n_messages > 1
