"""Users, chats, messages and predictions: recording what the bot scored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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
