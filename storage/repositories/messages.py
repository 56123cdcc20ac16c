"""Users, chats, messages and predictions: recording what the bot scored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import _onehop
from storage.models import Chat, Message, Prediction, User, utcnow
from storage.repositories._common import dialect_insert, dialect_name, upsert


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """What `record_scored_message` wrote."""

    message_id: int  # messages.id (internal; callback data and labels use this)
    prediction_id: int
    edited: bool  # True when the same chat + Telegram message id was stored before


def top_margin(probs: Mapping[str, float]) -> float:
    """Top-1 minus top-2 probability (1.0 with a single class): small = uncertain."""
    values = sorted(probs.values(), reverse=True)
    if not values:
        return 0.0
    return float(values[0] - (values[1] if len(values) > 1 else 0.0))


async def upsert_user(
    session: AsyncSession,
    user_id: int,
    *,
    username: str | None = None,
    first_name: str | None = None,
) -> None:
    """Create the user row if needed; refresh username / first name when given."""
    await upsert(
        session,
        User.__table__,
        {"id": user_id, "username": username, "first_name": first_name, "first_seen": utcnow()},
        keys=["id"],
        update_columns=["username", "first_name"],
    )


async def upsert_chat(
    session: AsyncSession, chat_id: int, *, type: str, title: str | None = None
) -> None:
    """Create the chat row if needed; refresh its type and title."""
    await upsert(
        session,
        Chat.__table__,
        {"id": chat_id, "type": type, "title": title, "created_at": utcnow()},
        keys=["id"],
        update_columns=["type", "title"],
    )


async def is_opted_out(session: AsyncSession, user_id: int) -> bool:
    """True when this person asked not to be stored (the caller then stores nothing)."""
    flag = await session.scalar(select(User.opted_out).where(User.id == user_id))
    return bool(flag)


async def set_opted_out(session: AsyncSession, user_id: int, opted_out: bool = True) -> None:
    """Set or clear the opt-out flag (creates the user row if needed)."""
    await upsert_user(session, user_id)
    await session.execute(update(User).where(User.id == user_id).values(opted_out=opted_out))


@lru_cache(maxsize=4)
def _message_upsert(name: str):
    """INSERT a message, or on the same chat + Telegram id (an edit) replace its text."""
    table = Message.__table__
    stmt = dialect_insert(name, table)
    if stmt is None:
        return None
    return stmt.on_conflict_do_update(
        index_elements=["chat_id", "telegram_message_id"],
        set_={"text": stmt.excluded.text, "edited_at": stmt.excluded.received_at},
    ).returning(table.c.id, table.c.chat_id, table.c.telegram_message_id, table.c.edited_at)


_MESSAGE_INSERT = insert(Message.__table__)
_PREDICTION_INSERT = insert(Prediction.__table__)


async def _upsert_message(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int | None,
    telegram_message_id: int | None,
    text: str,
    received_at: datetime,
) -> tuple[int, bool]:
    """Insert the message, or update its text when this chat + Telegram id exists (an edit)."""
    values = {
        "chat_id": chat_id,
        "user_id": user_id,
        "telegram_message_id": telegram_message_id,
        "text": text,
        "received_at": received_at,
    }
    # Core statements on the session's connection: the hot path skips the ORM layer.
    conn = await session.connection()
    if telegram_message_id is not None:
        stmt = _message_upsert(dialect_name(session))
        if stmt is not None:
            row = (await conn.execute(stmt, values)).one()
            return row.id, row.edited_at is not None
        existing = await conn.scalar(
            select(Message.id).where(
                Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id
            )
        )
        if existing is not None:
            await conn.execute(
                update(Message)
                .where(Message.id == existing)
                .values(text=text, edited_at=received_at)
            )
            return existing, True
    result = await conn.execute(_MESSAGE_INSERT, values)
    return int(result.inserted_primary_key[0]), False


def _prediction_values(
    message_id: int,
    model_version: str,
    label: str,
    confidence: float,
    probs: Mapping[str, float],
    latency_ms: float | None,
    created_at: datetime | None = None,
) -> dict:
    return {
        "message_id": message_id,
        "model_version": model_version,
        "label": label,
        "confidence": float(confidence),
        "margin": top_margin(probs),
        "probs": {k: float(v) for k, v in probs.items()},
        "latency_ms": latency_ms,
        "created_at": created_at or utcnow(),
    }


async def add_prediction(
    session: AsyncSession,
    message_id: int,
    *,
    model_version: str,
    label: str,
    confidence: float,
    probs: Mapping[str, float],
    latency_ms: float | None = None,
) -> int:
    """Store one scoring of a message; returns predictions.id."""
    values = _prediction_values(message_id, model_version, label, confidence, probs, latency_ms)
    conn = await session.connection()
    # No RETURNING: the driver's lastrowid saves a fetch on the hot path.
    result = await conn.execute(_PREDICTION_INSERT, values)
    return int(result.inserted_primary_key[0])


async def record_scored_message(
    session: AsyncSession,
    *,
    chat_id: int,
    chat_type: str,
    user_id: int | None,
    text: str,
    model_version: str,
    label: str,
    confidence: float,
    probs: Mapping[str, float],
    telegram_message_id: int | None = None,
    chat_title: str | None = None,
    username: str | None = None,
    first_name: str | None = None,
    latency_ms: float | None = None,
    received_at: datetime | None = None,
) -> RecordedMessage:
    """Upsert user + chat, insert (or, for an edit, update) the message, insert its prediction.

    An edited message (same `chat_id` + `telegram_message_id`) keeps its id, labels and old
    predictions; its text is replaced and the new prediction is added. Opted-out users: check
    `is_opted_out` first; this function stores whatever it is given. `user_id` None = no author
    (channel posts). Never commits: call it inside `async with sessionmaker.begin()`.
    """
    if user_id is not None:
        await upsert_user(session, user_id, username=username, first_name=first_name)
    await upsert_chat(session, chat_id, type=chat_type, title=chat_title)
    message_id, edited = await _upsert_message(
        session,
        chat_id=chat_id,
        user_id=user_id,
        telegram_message_id=telegram_message_id,
        text=text,
        received_at=received_at or utcnow(),
    )
    prediction_id = await add_prediction(
        session,
        message_id,
        model_version=model_version,
        label=label,
        confidence=confidence,
        probs=probs,
        latency_ms=latency_ms,
    )
    return RecordedMessage(message_id, prediction_id, edited)


# --- many scored messages in one unit of work (group commit) ------------------------------------


@dataclass(frozen=True, slots=True)
class ScoredMessage:
    """The arguments of `record_scored_message` as one value (see `record_scored_messages`)."""

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

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for `record_scored_message`."""
        return {name: getattr(self, name) for name in _SCORED_FIELDS}


class BatchResultError(RuntimeError):
    """RETURNING did not give back a row for every item (should not happen). `.committed`:
    the batch's transaction was committed already (see `record_many(commit=True)`)."""

    def __init__(self, message: str, *, committed: bool = False) -> None:
        super().__init__(message)
        self.committed = committed


_SCORED_FIELDS = tuple(f.name for f in dataclass_fields(ScoredMessage))
_PREDICTION_INSERT_RETURNING = _PREDICTION_INSERT.returning(
    Prediction.__table__.c.id, Prediction.__table__.c.message_id
)
# The same, finding message_id by chat + Telegram id (portable scalar subquery in VALUES).
_PREDICTION_BY_KEY = _PREDICTION_INSERT_RETURNING.values(
    message_id=select(Message.__table__.c.id)
    .where(
        Message.__table__.c.chat_id == bindparam("m_chat"),
        Message.__table__.c.telegram_message_id == bindparam("m_tg"),
    )
    .scalar_subquery()
)


def batch_supported(name: str) -> bool:
    """True when `record_many` works on this dialect (SQLAlchemy has INSERT ... ON CONFLICT
    for it: SQLite, PostgreSQL); elsewhere record one by one."""
    return _batch_statements(name) is not None


@lru_cache(maxsize=8)
def _batch_statements(name: str, skip_opted_out: bool = False):
    """(users, chats, messages) upserts for executemany, or None without ON CONFLICT support.

    COALESCE keeps a stored username / first name / title when the new value is None, as
    `upsert` does row by row (one statement must serve every row). With `skip_opted_out`, an
    opted-out user's row is left as it is (DO UPDATE ... WHERE) and RETURNING lists the users
    that are not opted out: the opt-out check costs no statement of its own.
    """
    users, chats = User.__table__, Chat.__table__
    user_stmt, chat_stmt = dialect_insert(name, users), dialect_insert(name, chats)
    messages = _message_upsert(name)
    if user_stmt is None or chat_stmt is None or messages is None:
        return None
    user_set = {
        "username": func.coalesce(user_stmt.excluded.username, users.c.username),
        "first_name": func.coalesce(user_stmt.excluded.first_name, users.c.first_name),
    }
    if skip_opted_out:
        user_stmt = user_stmt.on_conflict_do_update(
            index_elements=["id"], set_=user_set, where=users.c.opted_out.is_not(True)
        ).returning(users.c.id)
    else:
        user_stmt = user_stmt.on_conflict_do_update(index_elements=["id"], set_=user_set)
    chat_stmt = chat_stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "type": chat_stmt.excluded.type,
            "title": func.coalesce(chat_stmt.excluded.title, chats.c.title),
        },
    )
    return user_stmt, chat_stmt, messages


def _merged_users(items: Sequence[ScoredMessage], now: datetime) -> list[dict]:
    """One row per user (a key twice in one ON CONFLICT statement fails on PostgreSQL); the
    last non-None username / first name wins, as it would one message at a time."""
    users: dict[int, dict] = {}
    for item in items:
        if item.user_id is None:
            continue
        row = users.setdefault(
            item.user_id,
            {"id": item.user_id, "username": None, "first_name": None, "first_seen": now},
        )
        if item.username is not None:
            row["username"] = item.username
        if item.first_name is not None:
            row["first_name"] = item.first_name
    return list(users.values())


def _merged_chats(items: Sequence[ScoredMessage], now: datetime) -> list[dict]:
    """One row per chat: the last type and the last non-None title win."""
    chats: dict[int, dict] = {}
    for item in items:
        row = chats.setdefault(item.chat_id, {"id": item.chat_id, "title": None, "created_at": now})
        row["type"] = item.chat_type
        if item.chat_title is not None:
            row["title"] = item.chat_title
    return list(chats.values())


def _rounds(items: Sequence[ScoredMessage], indexes: Iterable[int]) -> list[list[int]]:
    """Item indexes in rounds in which no chat + Telegram message id repeats: an edit of a
    message stored earlier in the same batch goes in a later round, so it finds that row."""
    seen: dict[tuple[int, int], int] = {}
    rounds: list[list[int]] = [[]]
    for index in indexes:
        item = items[index]
        n = 0
        if item.telegram_message_id is not None:
            key = (item.chat_id, item.telegram_message_id)
            n = seen.get(key, 0)
            seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(index)
    return rounds


def _message_values(item: ScoredMessage, now: datetime) -> dict:
    return {
        "chat_id": item.chat_id,
        "user_id": item.user_id,
        "telegram_message_id": item.telegram_message_id,
        "text": item.text,
        "received_at": item.received_at or now,
    }


def _prediction_params(item: ScoredMessage, message_id: int | None, now: datetime) -> dict:
    values = _prediction_values(
        message_id,  # type: ignore[arg-type]  # None: replaced just below
        item.model_version,
        item.label,
        item.confidence,
        item.probs,
        item.latency_ms,
        now,
    )
    if message_id is None:  # found by chat + Telegram id in the statement (_PREDICTION_BY_KEY)
        del values["message_id"]
        values["m_chat"], values["m_tg"] = item.chat_id, item.telegram_message_id
    return values


def _write_round(
    conn: Connection,
    upsert_stmt: Any,
    items: Sequence[ScoredMessage],
    indexes: list[int],
    now: datetime,
    commit: bool = False,
) -> dict[int, RecordedMessage]:
    """Messages and predictions of one round (no chat + Telegram id twice in it).

    Messages with a Telegram id: one upsert, and one predictions insert that finds each
    message by chat + Telegram id, so it needs nothing back from the upsert: on SQLite both
    travel in one trip to aiosqlite's thread (`_onehop.defer_next(keep_rows=True)`), with the
    COMMIT when `commit`. Rows are matched to items by the columns RETURNING gives back, never
    by position (SQLite does not promise RETURNING order for a multi-row INSERT); message ids
    are distinct within a round, so they identify the prediction rows.
    """
    dbapi = conn.connection.dbapi_connection
    message: dict[int, tuple[int, bool]] = {}
    keyed = [i for i in indexes if items[i].telegram_message_id is not None]
    loose = [i for i in indexes if items[i].telegram_message_id is None]
    for i in loose:  # no Telegram id (console lines): nothing to match on, so one by one
        result = conn.execute(_MESSAGE_INSERT, _message_values(items[i], now))
        message[i] = (int(result.inserted_primary_key[0]), False)
    statements: list[tuple[Any, list[dict]]] = []
    if loose:
        statements.append(
            (
                _PREDICTION_INSERT_RETURNING,
                [_prediction_params(items[i], message[i][0], now) for i in loose],
            )
        )
    pipelined = False
    if keyed:
        pipelined = _onehop.defer_next(dbapi, keep_rows=True)
        result = conn.execute(upsert_stmt, [_message_values(items[i], now) for i in keyed])
        if not pipelined:
            _match_messages(items, keyed, list(result), message)
        statements.append(
            (_PREDICTION_BY_KEY, [_prediction_params(items[i], None, now) for i in keyed])
        )
    predictions: dict[int, int] = {}
    committed = False
    for n, (stmt, params) in enumerate(statements):
        if commit and n == len(statements) - 1:
            committed = _onehop.commit_after_next(dbapi)
        predictions.update((r.message_id, r.id) for r in conn.execute(stmt, params))
    try:
        if pipelined:
            (rows,) = _onehop.take_kept_rows(dbapi)
            _match_messages(items, keyed, rows, message)
        return {
            i: RecordedMessage(message[i][0], predictions[message[i][0]], message[i][1])
            for i in indexes
        }
    except (KeyError, ValueError, BatchResultError) as exc:
        raise BatchResultError(f"rows did not come back: {exc!r}", committed=committed) from exc


def _match_messages(
    items: Sequence[ScoredMessage],
    keyed: list[int],
    rows: Sequence[Any],
    message: dict[int, tuple[int, bool]],
) -> None:
    """Fill `message` (item index -> (id, edited)) from the upsert's RETURNING rows
    (id, chat_id, telegram_message_id, edited_at): edited_at is only set by an edit."""
    found = {(row[1], row[2]): (row[0], row[3] is not None) for row in rows}
    for i in keyed:
        row = found.get((items[i].chat_id, items[i].telegram_message_id))
        if row is None:
            raise BatchResultError(f"no row came back for message {items[i].telegram_message_id}")
        message[i] = row


def record_many(
    conn: Connection,
    items: Sequence[ScoredMessage],
    *,
    skip_opted_out: bool = False,
    commit: bool = False,
) -> list[RecordedMessage | None]:
    """`record_scored_messages` on a sync Connection (run it with `AsyncConnection.run_sync`:
    the whole batch then crosses from asyncio to SQLAlchemy's sync core once). Only for
    dialects where `batch_supported()`.

    `commit=True` is for a caller that commits right afterwards: on SQLite (one-hop
    connections) the COMMIT then travels with the last statement, saving a trip to the
    driver's thread, and SQLAlchemy's own commit finds nothing left to do. Elsewhere it
    changes nothing (never commits). A `BatchResultError` with `.committed` True means the
    rows are stored even though the results could not be read back: don't write them again.
    """
    statements = _batch_statements(conn.dialect.name, skip_opted_out)
    if statements is None:
        raise NotImplementedError(f"no INSERT ... ON CONFLICT for {conn.dialect.name}")
    user_stmt, chat_stmt, message_stmt = statements
    now = utcnow()
    keep: list[int] = list(range(len(items)))
    users = _merged_users(items, now)
    if users:  # users before messages: messages.user_id references them
        result = conn.execute(user_stmt, users)
        if skip_opted_out:  # RETURNING left out the opted-out users
            stored = set(result.scalars())
            keep = [i for i in keep if items[i].user_id is None or items[i].user_id in stored]
    recorded: dict[int, RecordedMessage] = {}
    if keep:
        # Nobody reads this statement's result: on SQLite it travels with the messages upsert
        # (one trip to aiosqlite's thread fewer); elsewhere defer_next() does nothing.
        _onehop.defer_next(conn.connection.dbapi_connection)
        conn.execute(chat_stmt, _merged_chats([items[i] for i in keep], now))
        rounds = _rounds(items, keep)
        for n, indexes in enumerate(rounds):
            last = commit and n == len(rounds) - 1
            recorded.update(_write_round(conn, message_stmt, items, indexes, now, last))
    return [recorded.get(i) for i in range(len(items))]


async def record_scored_messages(
    session: AsyncSession, items: Sequence[ScoredMessage], *, skip_opted_out: bool = False
) -> list[RecordedMessage | None]:
    """Record many scored messages in the caller's unit of work with a few set-based statements.

    The result (and the database afterwards) is what calling `record_scored_message` for each
    item in order would give, edits included (also an edit of a message earlier in `items`),
    except that new messages may get their ids in another order; but with one statement per
    table for the whole batch (users, chats, messages, predictions; more only for an edit
    within `items` or a message without Telegram id).
    `skip_opted_out`: messages by opted-out users are not stored (None in their place), and
    their user row is left untouched, checked in the same statement that upserts the users.
    Backends without INSERT ... ON CONFLICT in SQLAlchemy get the one-by-one path.
    Never commits.
    """
    if not items:
        return []
    if batch_supported(dialect_name(session)):
        conn = await session.connection()
        return await conn.run_sync(record_many, items, skip_opted_out=skip_opted_out)
    results: list[RecordedMessage | None] = []
    for item in items:
        if (
            skip_opted_out
            and item.user_id is not None
            and await is_opted_out(session, item.user_id)
        ):
            results.append(None)
        else:
            results.append(await record_scored_message(session, **item.fields()))
    return results


async def get_message(session: AsyncSession, message_id: int) -> Message | None:
    """The message with this messages.id, or None."""
    return await session.get(Message, message_id)


async def find_message(
    session: AsyncSession, chat_id: int, telegram_message_id: int
) -> Message | None:
    """The message stored for this chat + Telegram message id, or None."""
    return await session.scalar(
        select(Message).where(
            Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id
        )
    )


async def latest_prediction(
    session: AsyncSession, message_id: int, model_version: str | None = None
) -> Prediction | None:
    """The newest prediction of a message (optionally by one model version)."""
    stmt = select(Prediction).where(Prediction.message_id == message_id)
    if model_version is not None:
        stmt = stmt.where(Prediction.model_version == model_version)
    return await session.scalar(stmt.order_by(Prediction.id.desc()).limit(1))
