"""Group commit (storage.recorder): same results as one unit of work per message, shared
transactions, isolated failures, crash safety, clean shutdown."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from storage import repositories as repo
from storage.models import Chat, Message, Prediction, User
from storage.recorder import RecorderClosedError, ScoredMessageRecorder
from storage.repositories.batch import (
    ScoredMessage,
    _chats_upsert,
    _users_upsert,
    record_scored_messages,
)
from storage.repositories.messages import _message_upsert
from tests.storage.conftest import PROBS_POS

ROOT = Path(__file__).resolve().parents[2]
PROBS_NEG = {"negative": 0.8, "neutral": 0.15, "positive": 0.05}


def fields(
    *,
    chat_id: int = -100,
    user_id: int | None = 11,
    tg_id: int | None = None,
    text: str = "hello there",
    probs: dict[str, float] | None = None,
    username: str | None = "someone",
    chat_title: str | None = None,
    **extra,
) -> dict:
    """Keyword arguments of `record_scored_message` with sensible defaults."""
    probs = probs or PROBS_POS
    label = max(probs, key=probs.get)
    return {
        "chat_id": chat_id,
        "chat_type": "group",
        "chat_title": chat_title,
        "user_id": user_id,
        "username": username,
        "text": text,
        "model_version": "v0001",
        "label": label,
        "confidence": probs[label],
        "probs": probs,
        "telegram_message_id": tg_id,
        **extra,
    }


async def count(sm, table) -> int:
    async with sm() as s:
        return await s.scalar(select(func.count()).select_from(table))


async def test_one_record_is_written_at_once_and_ids_are_right(sm):
    async with ScoredMessageRecorder(sm) as recorder:
        rec = await recorder.record(**fields(tg_id=5, text="great day"))
        assert recorder.batches == 1  # written alone: no waiting for company
    async with sm() as s:
        msg = await repo.get_message(s, rec.message_id)
        assert (msg.chat_id, msg.user_id, msg.telegram_message_id, msg.text) == (
            -100,
            11,
            5,
            "great day",
        )
        pred = await repo.latest_prediction(s, rec.message_id)
        assert pred.id == rec.prediction_id and pred.label == "positive"
        assert pred.margin == pytest.approx(0.5)
        assert (await s.get(User, 11)).username == "someone"
    assert rec.edited is False


async def test_50_tasks_x_40_messages_share_transactions(sm):
    recorder = ScoredMessageRecorder(sm)
    returned: dict[str, tuple[int, int]] = {}

    async def worker(task: int) -> None:
        for i in range(40):
            text = f"task {task} message {i}"
            rec = await recorder.record(
                **fields(
                    chat_id=-(task % 7) - 1, user_id=1000 + task, tg_id=task * 1000 + i, text=text
                )
            )
            returned[text] = (rec.message_id, rec.prediction_id)
            if i % 10 == 0:  # other units of work share the one connection meanwhile
                async with sm.begin() as s:
                    await repo.set_label(
                        s, rec.message_id, 5000 + task, "positive", source="inline"
                    )

    await asyncio.gather(*(worker(t) for t in range(50)))
    await recorder.close()
    assert recorder.batches < 1000  # concurrent callers really shared transactions
    async with sm() as s:
        rows = (await s.execute(select(Message.id, Message.text))).all()
        preds = dict((await s.execute(select(Prediction.id, Prediction.message_id))).all())
        assert await s.scalar(select(func.count()).select_from(User)) == 100
    assert {text: mid for mid, text in rows} == {t: ids[0] for t, ids in returned.items()}
    assert len(rows) == 2000
    assert {pid: mid for mid, pid in returned.values()} == preds
    assert await count(sm, Chat) == 7


async def test_edits_within_one_batch_behave_like_one_by_one(sm, engine, tmp_path):
    recorder = ScoredMessageRecorder(sm)
    results = await asyncio.gather(
        recorder.record(**fields(tg_id=1, text="v1")),
        recorder.record(**fields(tg_id=2, text="other")),
        recorder.record(**fields(tg_id=1, text="v2", probs=PROBS_NEG)),
        recorder.record(**fields(tg_id=1, text="v3")),
    )
    await recorder.close()
    assert recorder.batches == 1  # all four in one transaction
    first, other, second, third = results
    assert [r.edited for r in results] == [False, False, True, True]
    assert first.message_id == second.message_id == third.message_id != other.message_id
    assert first.prediction_id < second.prediction_id < third.prediction_id
    async with sm() as s:
        msg = await repo.get_message(s, first.message_id)
        assert msg.text == "v3" and msg.edited_at is not None
        latest = await repo.latest_prediction(s, first.message_id)
        assert latest.id == third.prediction_id and latest.label == "positive"
        n = await s.scalar(select(func.count()).where(Prediction.message_id == first.message_id))
        assert n == 3


SNAPSHOT = {
    "users": "SELECT id, username, first_name, opted_out FROM users",
    "chats": "SELECT id, type, title FROM chats",
    "messages": "SELECT chat_id, user_id, telegram_message_id, text, edited_at IS NOT NULL"
    " FROM messages",
    "predictions": "SELECT m.chat_id, m.telegram_message_id, m.text, p.label, p.confidence,"
    " p.margin, p.probs, p.latency_ms FROM predictions p JOIN messages m ON m.id = p.message_id",
}


async def _snapshot(url: str) -> dict[str, list[tuple]]:
    """Table contents without times and internal ids (new messages of a batch may get their
    ids in another order than one by one; nothing else may differ). Any backend."""
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                table: sorted((tuple(r) for r in await conn.execute(text(sql))), key=repr)
                for table, sql in SNAPSHOT.items()
            }
    finally:
        await engine.dispose()


def _same_message(results) -> list[list[int]]:
    """Which positions were recorded into the same message."""
    return [
        [j for j, other in enumerate(results) if other.message_id == r.message_id] for r in results
    ]


MIXED = [
    fields(chat_id=-1, user_id=1, tg_id=1, text="a", username=None, chat_title="Group"),
    fields(chat_id=-1, user_id=1, tg_id=2, text="b", username="ann", first_name="Ann"),
    fields(chat_id=-1, user_id=2, tg_id=1, text="a edited", username=None, probs=PROBS_NEG),
    fields(chat_id=0, user_id=0, tg_id=None, text="console line", username=None),
    fields(chat_id=0, user_id=0, tg_id=None, text="console line", username=None),
    fields(chat_id=-2, user_id=None, tg_id=1, text="channel post", latency_ms=3.5),
    fields(chat_id=-1, user_id=1, tg_id=1, text="a again", chat_title=None, username=None),
    fields(chat_id=-2, user_id=None, tg_id=1, text="channel post edited"),
    fields(chat_id=-3, user_id=2, tg_id=2, text="bob again", username=None, chat_title=None),
]


async def test_set_based_batch_stores_what_one_by_one_stores(sm, db_url, other_db_url):
    from storage.db import create_engine, create_sessionmaker

    old = fields(chat_id=-1, user_id=1, tg_id=2, text="old")  # the batch edits it
    bob = fields(chat_id=-3, user_id=2, tg_id=1, text="bob's", username="bob", chat_title="B")
    async with sm.begin() as s:
        await repo.record_scored_message(s, **old)
        await repo.record_scored_message(s, **bob)
        batch = await record_scored_messages(s, [ScoredMessage(**f) for f in MIXED])
    engine = create_engine(other_db_url)
    try:
        one_by_one = []
        async with create_sessionmaker(engine).begin() as s:
            await repo.record_scored_message(s, **old)
            await repo.record_scored_message(s, **bob)
            for f in MIXED:
                one_by_one.append(await repo.record_scored_message(s, **f))
    finally:
        await engine.dispose()
    assert [r.edited for r in batch] == [r.edited for r in one_by_one]
    assert _same_message(batch) == _same_message(one_by_one)
    ours = await _snapshot(db_url)
    assert ours == await _snapshot(other_db_url)
    users = dict((u[0], u[1:]) for u in ours["users"])
    assert users[1] == ("ann", "Ann", 0)  # the last known name wins (0: False on PostgreSQL)
    assert users[2] == ("bob", None, 0)  # None never overwrote a stored username


async def test_failing_item_is_isolated_and_gets_its_own_error(sm):
    recorder = ScoredMessageRecorder(sm)
    good = [recorder.record(**fields(tg_id=i, text=f"good {i}")) for i in range(5)]
    bad = recorder.record(**fields(tg_id=99, text=None))  # messages.text is NOT NULL
    results = await asyncio.gather(*good[:2], bad, *good[2:], return_exceptions=True)
    await recorder.close()
    assert isinstance(results[2], IntegrityError)
    stored = [r for i, r in enumerate(results) if i != 2]
    assert all(not isinstance(r, BaseException) for r in stored)
    async with sm() as s:
        texts = sorted(await s.scalars(select(Message.text)))
        assert texts == [f"good {i}" for i in range(5)]
        assert await repo.find_message(s, -100, 99) is None
        for rec in stored:
            assert (await repo.latest_prediction(s, rec.message_id)).id == rec.prediction_id


async def test_batch_failing_half_way_leaves_nothing_twice(sm):
    # label None fails at the predictions insert, after the batch's messages were written in
    # the same transaction: that transaction must vanish, and the retry write each good one once.
    recorder = ScoredMessageRecorder(sm)
    results = await asyncio.gather(
        recorder.record(**fields(tg_id=1, text="one")),
        recorder.record(**{**fields(tg_id=2, text="half"), "label": None}),
        recorder.record(**fields(tg_id=None, text="no telegram id")),
        return_exceptions=True,
    )
    await recorder.close()
    assert isinstance(results[1], IntegrityError)
    assert await count(sm, Message) == 2 and await count(sm, Prediction) == 2
    async with sm() as s:
        assert await repo.find_message(s, -100, 2) is None


async def test_opted_out_authors_are_skipped_and_their_row_untouched(sm):
    async with sm.begin() as s:
        await repo.set_opted_out(s, 7)
    recorder = ScoredMessageRecorder(sm, skip_opted_out=True)
    skipped, kept, channel = await asyncio.gather(
        recorder.record(**fields(user_id=7, tg_id=1, username="new name", chat_id=-9)),
        recorder.record(**fields(user_id=8, tg_id=2)),
        recorder.record(**fields(user_id=None, tg_id=3)),
    )
    await recorder.close()
    assert skipped is None and kept is not None and channel is not None
    async with sm() as s:
        user = await s.get(User, 7)
        assert (user.username, user.opted_out) == (None, True)
        assert await repo.find_message(s, -9, 1) is None
        assert await s.get(Chat, -9) is None  # nothing of theirs, not even their chat
    assert await count(sm, Message) == 2


async def test_close_writes_everything_queued_then_refuses(sm):
    recorder = ScoredMessageRecorder(sm, max_batch=16)
    tasks = [asyncio.create_task(recorder.record(**fields(tg_id=i))) for i in range(100)]
    await asyncio.sleep(0)  # every task has queued its message
    await recorder.close()
    assert all(t.done() for t in tasks)
    assert len({t.result().message_id for t in tasks}) == 100
    assert recorder.batches >= 100 // 16  # max_batch respected
    assert await count(sm, Message) == 100
    with pytest.raises(RecorderClosedError):
        await recorder.record(**fields(tg_id=1000))


async def test_cancelled_caller_before_its_batch_is_not_written(sm):
    recorder = ScoredMessageRecorder(sm)
    task = asyncio.create_task(recorder.record(**fields(tg_id=1)))
    await asyncio.sleep(0)  # queued; the writer has not run yet
    task.cancel()
    kept = await recorder.record(**fields(tg_id=2))
    await recorder.close()
    assert task.cancelled() and kept is not None
    assert await count(sm, Message) == 1


async def test_received_at_is_when_record_was_called(sm):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with ScoredMessageRecorder(sm) as recorder:
        given = await recorder.record(**fields(tg_id=1, received_at=when))
        before = datetime.now(UTC)
        default = await recorder.record(**fields(tg_id=2))
    async with sm() as s:
        assert (await repo.get_message(s, given.message_id)).received_at == when
        assert (await repo.get_message(s, default.message_id)).received_at >= before


def test_statements_compile_for_postgresql():
    dialect = postgresql.dialect()
    sql = str(_users_upsert("postgresql", True).compile(dialect=dialect))
    assert "ON CONFLICT (id) DO UPDATE" in sql and "coalesce(excluded.username" in sql
    assert "WHERE users.opted_out IS NOT true RETURNING users.id" in sql
    sql = str(_chats_upsert("postgresql").compile(dialect=dialect))
    assert "coalesce(excluded.title, chats.title)" in sql
    sql = str(_message_upsert("postgresql").compile(dialect=dialect))
    assert "ON CONFLICT (chat_id, telegram_message_id) DO UPDATE" in sql and "RETURNING" in sql


CRASH_SCRIPT = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
from sqlalchemy import event
from storage.db import create_engine, create_sessionmaker
from storage.recorder import ScoredMessageRecorder

def fields(i):
    return dict(chat_id=-1, chat_type="group", user_id=1, text=f"m{{i}}", model_version="v1",
                label="positive", confidence=0.9, probs={{"positive": 0.9, "negative": 0.1}},
                telegram_message_id=i)

async def main():
    engine = create_engine({url!r})
    recorder = ScoredMessageRecorder(create_sessionmaker(engine))
    for i in range(3):  # committed: these must survive the crash
        await recorder.record(**fields(i))

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def crash(conn, cursor, statement, *args):  # the batch's messages are written already
        if statement.startswith("INSERT INTO predictions"):
            os._exit(17)

    await asyncio.gather(*(recorder.record(**fields(i)) for i in range(10, 20)))

asyncio.run(main())
"""


def test_process_crash_in_the_middle_of_a_batch_leaves_no_trace(db_path):
    script = CRASH_SCRIPT.format(root=str(ROOT), url=f"sqlite+aiosqlite:///{db_path}")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=120
    )
    assert proc.returncode == 17, proc.stderr.decode()[-2000:]
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        texts = sorted(t for (t,) in conn.execute("SELECT text FROM messages"))
        assert texts == ["m0", "m1", "m2"]
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (3,)
    finally:
        conn.close()
