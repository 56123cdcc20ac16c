"""Many scored messages in one unit of work, with one set-based statement per table.

What the group-commit recorder (`storage.recorder`) writes. The result, and the database
afterwards, are what `record_scored_message` item by item gives (new messages may get their ids
in another order), but on SQLite and PostgreSQL with one statement per table for the whole batch
(users, chats, messages, predictions; the opt-out check rides on the users upsert) instead of
one per table and message. Backends without INSERT ... ON CONFLICT in SQLAlchemy get the
item-by-item path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, func, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import Chat, Prediction, User, utcnow
from storage.repositories._common import dialect_insert, dialect_name
from storage.repositories.messages import (
    RecordedMessage,
    _message_upsert,
    _prediction_values,
    is_opted_out,
    record_scored_message,
)


@dataclass(frozen=True, slots=True)
class ScoredMessage:
    """The arguments of `record_scored_message` as one value."""

    chat_id: int
    chat_type: str
    user_id: int | None
    text: str
    model_version: str
    label: str
    confidence: float
    probs: Mapping[str, float]
    telegram_message_id: int | None = None
    chat_title: str | None = None
    username: str | None = None
    first_name: str | None = None
    latency_ms: float | None = None
    received_at: datetime | None = None


async def record_scored_messages(
    session: AsyncSession, items: Sequence[ScoredMessage], *, skip_opted_out: bool = False
) -> list[RecordedMessage | None]:
    """Record `items` in the caller's unit of work, as `record_scored_message` would one by one,
    edits included (also an edit of a message earlier in `items`). Never commits.

    `skip_opted_out`: a message by an opted-out person is not stored (None in its place), and
    neither their user row nor their chat is touched.
    """
    name = dialect_name(session)
    if dialect_insert(name, User.__table__) is None:  # no INSERT ... ON CONFLICT: one by one
        return [await _record_one(session, item, skip_opted_out) for item in items]
    conn = await session.connection()
    results: list[RecordedMessage | None] = []
    for run in _runs(items):
        results += await _record_run(conn, name, run, skip_opted_out)
    return results


async def _record_one(
    session: AsyncSession, item: ScoredMessage, skip_opted_out: bool
) -> RecordedMessage | None:
    if skip_opted_out and item.user_id is not None and await is_opted_out(session, item.user_id):
        return None
    return await record_scored_message(session, **asdict(item))


def _key(item: ScoredMessage) -> tuple[int, int | None]:
    return item.chat_id, item.telegram_message_id


def _runs(items: Iterable[ScoredMessage]) -> Iterator[list[ScoredMessage]]:
    """`items` in consecutive runs in which no chat + Telegram id repeats: an edit of a message
    earlier in the batch starts a new run, so it finds that message stored. (A message without
    Telegram id never conflicts; it only needs a key its row can be matched by.)"""
    run: list[ScoredMessage] = []
    keys: set[tuple[int, int | None]] = set()
    for item in items:
        if _key(item) in keys:
            yield run
            run, keys = [], set()
        run.append(item)
        keys.add(_key(item))
    if run:
        yield run


async def _record_run(
    conn: AsyncConnection, name: str, items: list[ScoredMessage], skip_opted_out: bool
) -> list[RecordedMessage | None]:
    """One run: users, chats, messages, predictions, one statement each. Rows are matched to
    items by the columns RETURNING gives back, never by position (SQLite does not promise the
    order of a multi-row INSERT's RETURNING)."""
    now = utcnow()
    users = [
        {"id": i.user_id, "username": i.username, "first_name": i.first_name, "first_seen": now}
        for i in items
        if i.user_id is not None
    ]
    opted_out: set[int] = set()
    if users:  # before messages: messages.user_id references them
        result = await conn.execute(_users_upsert(name, skip_opted_out), _last_known(users))
        if skip_opted_out:  # RETURNING left out the opted-out people
            opted_out = {user["id"] for user in users}.difference(result.scalars())
    kept = [item for item in items if item.user_id not in opted_out]
    if not kept:
        return [None] * len(items)
    chats = [
        {"id": i.chat_id, "type": i.chat_type, "title": i.chat_title, "created_at": now}
        for i in kept
    ]
    await conn.execute(_chats_upsert(name), _last_known(chats))
    messages = [
        {
            "chat_id": i.chat_id,
            "user_id": i.user_id,
            "telegram_message_id": i.telegram_message_id,
            "text": i.text,
            "received_at": i.received_at or now,
        }
        for i in kept
    ]
    stored = {
        (row.chat_id, row.telegram_message_id): (row.id, row.edited_at is not None)
        for row in await conn.execute(_message_upsert(name), messages)
    }
    predictions = [
        _prediction_values(
            stored[_key(i)][0], i.model_version, i.label, i.confidence, i.probs, i.latency_ms
        )
        for i in kept
    ]
    # Message ids are distinct within a run, so they identify the prediction rows.
    prediction_ids = dict((await conn.execute(_PREDICTION_INSERT, predictions)).all())
    results: list[RecordedMessage | None] = []
    for item in items:
        if item.user_id in opted_out:
            results.append(None)
            continue
        message_id, edited = stored[_key(item)]
        results.append(RecordedMessage(message_id, prediction_ids[message_id], edited))
    return results


_PREDICTION_INSERT = insert(Prediction.__table__).returning(
    Prediction.__table__.c.message_id, Prediction.__table__.c.id
)


@lru_cache(maxsize=4)
def _users_upsert(name: str, skip_opted_out: bool):
    """With `skip_opted_out`, an opted-out person's row is left as it is and RETURNING lists
    everyone else: the opt-out check is part of the upsert (same statement, same row lock)."""
    users = User.__table__
    where = users.c.opted_out.is_not(True) if skip_opted_out else None
    stmt = _keep_known_upsert(name, users, "username", "first_name", where=where)
    return stmt.returning(users.c.id) if skip_opted_out else stmt


@lru_cache(maxsize=4)
def _chats_upsert(name: str):
    return _keep_known_upsert(name, Chat.__table__, "type", "title")


def _keep_known_upsert(name: str, table: Table, *columns: str, where: Any = None):
    """INSERT ... ON CONFLICT (id) DO UPDATE `columns`, where a None never overwrites a stored
    value (COALESCE), as `upsert` does row by row (one statement serves every row here)."""
    stmt = dialect_insert(name, table)
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={c: func.coalesce(stmt.excluded[c], table.c[c]) for c in columns},
        where=where,
    )


def _last_known(rows: list[dict]) -> list[dict]:
    """One row per id (PostgreSQL refuses one key twice in an ON CONFLICT statement); the last
    non-None value of each column wins, as it would one message at a time. Sorted by id, so
    concurrent batches lock the rows they share in the same order (no deadlock)."""
    merged: dict[int, dict] = {}
    for row in rows:
        into = merged.setdefault(row["id"], dict(row))
        into.update((column, value) for column, value in row.items() if value is not None)
    return sorted(merged.values(), key=lambda row: row["id"])
