"""Engine behaviour: write lock taken at the first statement, one-hop driver and fallback."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from storage import _onehop
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
async def test_connections_use_one_hop_cursors(engine, sm):
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).dbapi_connection
        assert isinstance(raw, _onehop.OneHopConnection)
    async with sm.begin() as s:
        rec = await record(s, tg_id=1)
        rows = (await s.execute(text("SELECT id, text FROM messages"))).all()
        assert rows == [(rec.message_id, "hello there")]
        result = await s.execute(text("UPDATE messages SET text = 'x' WHERE id > 0"))
        assert result.rowcount == 1
    async with sm.begin():
        pass  # an empty unit of work sends nothing and leaves no transaction behind
    async with sm.begin() as s:
        assert (await s.execute(text("SELECT text FROM messages"))).scalar_one() == "x"


async def test_stock_aiosqlite_adapter_still_works(db_url):
    engine = create_engine(db_url, one_hop=False)
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).dbapi_connection
            assert not isinstance(raw, _onehop.OneHopConnection)
        sm = create_sessionmaker(engine)
        async with sm.begin() as s:
            await record(s, tg_id=1)
        with pytest.raises(RuntimeError):
            async with sm.begin() as s:
                await record(s, tg_id=2)
                raise RuntimeError("crash")
        async with sm() as s:
            assert await s.scalar(select(func.count()).select_from(Message)) == 1
    finally:
        await engine.dispose()


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
