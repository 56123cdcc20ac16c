"""Numbers for /mood (counts and the trend) and /status, and annotator agreement data for
Cohen's kappa."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Chat, Label, Message, Prediction, User
from storage.repositories._common import dialect_name
from storage.repositories.dataset import count_new_resolved_labels
from storage.repositories.runs import last_trained_at


async def mood_counts(
    session: AsyncSession, chat_id: int, *, since: datetime | None = None
) -> dict[str, int]:
    """Messages per predicted label in a chat (latest prediction of each message).

    `since` limits to messages received at or after that time (e.g. now - 24h).
    """
    latest = (
        select(func.max(Prediction.id).label("pid"))
        .join(Message, Message.id == Prediction.message_id)
        .where(Message.chat_id == chat_id)
        .group_by(Prediction.message_id)
    )
    if since is not None:
        latest = latest.where(Message.received_at >= since)
    rows = await session.execute(
        select(Prediction.label, func.count())
        .where(Prediction.id.in_(latest.scalar_subquery()))
        .group_by(Prediction.label)
    )
    return {label: int(n) for label, n in rows}


def _bucket(session: AsyncSession, hourly: bool):
    """`received_at` as a UTC `YYYY-MM-DD` (or `YYYY-MM-DD HH`) string, per dialect."""
    if dialect_name(session) == "postgresql":
        utc = func.timezone("UTC", Message.received_at)
        return func.to_char(utc, "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    # SQLite stores UTC as naive text (`storage.models.UTCDateTime`); others: the same functions.
    return func.strftime("%Y-%m-%d %H" if hourly else "%Y-%m-%d", Message.received_at)


async def mood_trend(
    session: AsyncSession, chat_id: int, *, since: datetime | None = None, hourly: bool = False
) -> list[tuple[str, str, int]]:
    """(day or hour, label, messages) in a chat, by the latest prediction of each message, in
    time order: /mood's trend. Buckets are UTC `YYYY-MM-DD` (`YYYY-MM-DD HH` with `hourly`);
    days without messages are not listed."""
    latest = (
        select(func.max(Prediction.id).label("pid"))
        .join(Message, Message.id == Prediction.message_id)
        .where(Message.chat_id == chat_id)
        .group_by(Prediction.message_id)
    )
    if since is not None:
        latest = latest.where(Message.received_at >= since)
    bucket = _bucket(session, hourly)
    rows = await session.execute(
        select(bucket, Prediction.label, func.count())
        .join(Message, Message.id == Prediction.message_id)
        .where(Prediction.id.in_(latest.scalar_subquery()))
        .group_by(bucket, Prediction.label)
        .order_by(bucket, Prediction.label)
    )
    return [(str(b), label, int(n)) for b, label, n in rows]


@dataclass(frozen=True, slots=True)
class Totals:
    """Counts for /status."""

    messages: int
    users: int
    chats: int
    predictions: int
    labels: int  # label rows (one per message and person)
    labelled_messages: int  # messages with a resolved label
    new_labels: int  # resolved labels not yet trained on (since the last successful run)
    last_trained_at: datetime | None


async def _count(session: AsyncSession, table) -> int:
    return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def totals(session: AsyncSession) -> Totals:
    """Message, user, chat, prediction and label counts, and labels not yet trained on."""
    trained_at = await last_trained_at(session)
    return Totals(
        messages=await _count(session, Message),
        users=await _count(session, User),
        chats=await _count(session, Chat),
        predictions=await _count(session, Prediction),
        labels=await _count(session, Label),
        labelled_messages=await count_new_resolved_labels(session, None),
        new_labels=await count_new_resolved_labels(session, trained_at),
        last_trained_at=trained_at,
    )


async def annotator_counts(session: AsyncSession, *, source: str | None = None) -> dict[int, int]:
    """Current labels per person (import labels, which have no person, are left out)."""
    stmt = select(Label.user_id, func.count()).where(Label.user_id.is_not(None))
    if source is not None:
        stmt = stmt.where(Label.source == source)
    rows = await session.execute(stmt.group_by(Label.user_id))
    return {int(uid): int(n) for uid, n in rows}


@dataclass(frozen=True, slots=True)
class LabelPair:
    """Two people's labels for the same message (user_a < user_b)."""

    message_id: int
    user_a: int
    label_a: str
    user_b: int
    label_b: str


async def annotator_pairs(session: AsyncSession) -> list[LabelPair]:
    """Every pair of labels two different people gave the same message (for Cohen's kappa)."""
    a, b = aliased(Label), aliased(Label)
    rows = await session.execute(
        select(a.message_id, a.user_id, a.label, b.user_id, b.label)
        .join(b, (a.message_id == b.message_id) & (a.user_id < b.user_id))
        .where(a.user_id.is_not(None), b.user_id.is_not(None))
        .order_by(a.message_id, a.user_id, b.user_id)
    )
    return [LabelPair(m, ua, la, ub, lb) for m, ua, la, ub, lb in rows]


async def user_names(
    session: AsyncSession, user_ids: Collection[int]
) -> dict[int, tuple[str | None, str | None]]:
    """(username, first name) of each known person among `user_ids` (for /status)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(User.id, User.username, User.first_name).where(User.id.in_(list(user_ids)))
    )
    return {int(uid): (username, first_name) for uid, username, first_name in rows}


async def user_id_by_username(session: AsyncSession, username: str) -> int | None:
    """The Telegram id of the person with this @username (case-insensitive), if known."""
    return await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower()).limit(1)
    )
