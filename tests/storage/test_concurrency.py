"""Concurrent writers: every row lands, and "database is locked" never surfaces."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.db import create_engine, create_sessionmaker
from storage.models import Label, Message, Prediction, User
from tests.storage.conftest import record


async def hammer(db_url: str, *, engines: int, tasks: int, per_task: int) -> dict[str, int]:
    """`tasks` tasks spread over `engines` engines, each recording `per_task` scored and
    labelled messages (one unit of work each), with reads interleaved; returns row counts."""
    pools = [create_engine(db_url) for _ in range(engines)]
    makers = [create_sessionmaker(e) for e in pools]

    async def worker(task: int) -> None:
        sm = makers[task % len(makers)]
        for i in range(per_task):
            async with sm.begin() as s:
                rec = await record(
                    s,
                    chat_id=-(task % 7) - 1,
                    user_id=1000 + task,
                    tg_id=task * 1000 + i,
                    text=f"task {task} message {i}",
                )
                await repo.set_label(s, rec.message_id, 5000 + task, "positive", source="inline")
            if i % 10 == 0:  # readers interleave with the writers
                async with sm() as s:
                    await repo.mood_counts(s, -1)

    try:
        await asyncio.gather(*(worker(t) for t in range(tasks)))
        async with makers[0]() as s:
            counts = {
                table.__tablename__: await s.scalar(select(func.count()).select_from(table))
                for table in (Message, Prediction, Label, User)
            }
            texts = set(await s.scalars(select(Message.text)))
    finally:
        for engine in pools:
            await engine.dispose()
    assert texts == {f"task {t} message {i}" for t in range(tasks) for i in range(per_task)}
    return counts


@pytest.mark.slow
async def test_50_tasks_x_40_messages_with_predictions_and_labels(db_url):
    counts = await hammer(db_url, engines=1, tasks=50, per_task=40)
    assert counts == {"messages": 2000, "predictions": 2000, "labels": 2000, "users": 100}


@pytest.mark.slow
async def test_two_connection_pools_wait_for_each_other(db_url):
    # Two engines stand in for two processes (the bot and the CLI): SQLite's own locking
    # (BEGIN IMMEDIATE + busy_timeout) must make them wait, never fail.
    counts = await hammer(db_url, engines=2, tasks=8, per_task=15)
    assert counts == {"messages": 120, "predictions": 120, "labels": 120, "users": 16}
