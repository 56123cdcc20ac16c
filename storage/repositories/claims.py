"""The /label queue's hand-out and admission: claims (who holds an item until when) and entries
(which messages entered the queue, which were held out of it and why).

Claims: at most `labels_per_item` people hold an item at once (one when it is a label short),
across processes. `claim_item` locks the message row first on PostgreSQL (`FOR NO KEY UPDATE
SKIP LOCKED`: a worker never waits for another one's claim, it moves on to the next item);
SQLite runs every unit of work under `BEGIN IMMEDIATE`, so claims are serialised there anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Label, Message, QueueClaim, QueueEntry
from storage.repositories._common import dialect_name, upsert, upsert_statement
from storage.repositories.queue import _is_closed, claim_room


async def claim_item(
    session: AsyncSession,
    message_id: int,
    user_id: int,
    *,
    labels_per_item: int,
    now: datetime,
    expires_at: datetime,
    round_version: str | None,
    force: bool = False,
) -> bool:
    """Give the item to this person until `expires_at`; False when it is taken (or gone).

    `force` (Undo: the person's own item again) skips the room check, not the row lock.
    """
    locked = await session.scalar(
        select(Message.id)
        .where(Message.id == message_id)
        .with_for_update(skip_locked=True, key_share=True)
    )
    if locked is None:
        return False
    if not force:
        free = select(
            and_(
                claim_room(message_id, user_id, labels_per_item, now),
                ~_is_closed(message_id, labels_per_item),
            )
        )
        if not await session.scalar(free):
            return False
    await upsert(
        session,
        QueueClaim.__table__,
        {
            "message_id": message_id,
            "user_id": user_id,
            "round_version": round_version,
            "claimed_at": now,
            "expires_at": expires_at,
        },
        keys=["message_id", "user_id"],
        update_columns=["round_version", "claimed_at", "expires_at"],
    )
    return True


async def release_claim(
    session: AsyncSession, message_id: int, user_id: int, now: datetime
) -> None:
    """The person answered (label, skip) or stopped: the item is free for others again. The row
    stays: it records that the item was shown in this round and offered to this person."""
    await session.execute(
        update(QueueClaim)
        .where(
            QueueClaim.message_id == message_id,
            QueueClaim.user_id == user_id,
            QueueClaim.expires_at > now,
        )
        .values(expires_at=now)
    )


async def release_claims_of(session: AsyncSession, user_id: int, now: datetime) -> None:
    """Release every live claim of this person (a new item replaces the one they held)."""
    await session.execute(
        update(QueueClaim)
        .where(QueueClaim.user_id == user_id, QueueClaim.expires_at > now)
        .values(expires_at=now)
    )


async def has_claim(session: AsyncSession, message_id: int, user_id: int) -> bool:
    """Did the queue offer this item to this person (the only items its buttons may label)?"""
    found = await session.scalar(
        select(QueueClaim.message_id).where(
            QueueClaim.message_id == message_id, QueueClaim.user_id == user_id
        )
    )
    return found is not None


async def live_claim(session: AsyncSession, user_id: int, now: datetime) -> int | None:
    """The item this person holds now, if any (sending /label again shows it again)."""
    return await session.scalar(
        select(QueueClaim.message_id)
        .where(QueueClaim.user_id == user_id, QueueClaim.expires_at > now)
        .order_by(QueueClaim.claimed_at.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class ShownItem:
    """An item shown in a round: its message, author and chat (the diversity caps count them)."""

    message_id: int
    author_id: int | None
    chat_id: int | None
    text: str = ""


async def shown_in_round(session: AsyncSession, round_version: str | None) -> list[ShownItem]:
    """Distinct items the queue handed out under `round_version` (the active model)."""
    rows = await session.execute(
        select(Message.id, Message.user_id, Message.chat_id, Message.text)
        .where(
            exists().where(
                QueueClaim.message_id == Message.id, QueueClaim.round_version == round_version
            )
        )
        .order_by(Message.id)
    )
    return [ShownItem(int(m), a, c, t) for m, a, c, t in rows]


async def recently_labelled(session: AsyncSession, limit: int) -> list[tuple[int, str]]:
    """(id, text) of the messages labelled most recently (at most `limit` label rows)."""
    recent = select(Label.message_id).order_by(Label.updated_at.desc()).limit(limit)
    rows = await session.execute(
        select(Message.id, Message.text).where(Message.id.in_(recent.scalar_subquery()))
    )
    return [(int(m), t) for m, t in rows]


# --- admission ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message the queue has not looked at yet."""

    message_id: int
    author_id: int | None
    text: str
    received_at: datetime


async def unadmitted_messages(session: AsyncSession, limit: int) -> list[NewMessage]:
    """Messages newer than the newest queue entry, oldest first (at most `limit`)."""
    newest = select(func.coalesce(func.max(QueueEntry.message_id), 0)).scalar_subquery()
    rows = await session.execute(
        select(Message.id, Message.user_id, Message.text, Message.received_at)
        .where(Message.id > newest)
        .order_by(Message.id)
        .limit(limit)
    )
    return [NewMessage(int(m), a, t, r) for m, a, t, r in rows]


async def open_text_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these normalized-text keys an open entry already has."""
    if not keys:
        return set()
    rows = await session.scalars(
        select(QueueEntry.text_key).where(
            QueueEntry.text_key.in_(list(keys)), QueueEntry.state == "open"
        )
    )
    return set(rows)


async def open_entry_times(
    session: AsyncSession, author_ids: Collection[int], since: datetime
) -> dict[int, list[datetime]]:
    """When each author's open entries were received, from `since` on (the hourly cap)."""
    if not author_ids:
        return {}
    rows = await session.execute(
        select(QueueEntry.author_id, QueueEntry.received_at)
        .where(
            QueueEntry.author_id.in_(list(author_ids)),
            QueueEntry.received_at >= since,
            QueueEntry.state == "open",
        )
        .order_by(QueueEntry.received_at)
    )
    times: dict[int, list[datetime]] = {}
    for author, at in rows:
        times.setdefault(int(author), []).append(at)
    return times


@dataclass(frozen=True, slots=True)
class Admission:
    """The queue's verdict on one message: `reason` None = it entered the queue."""

    message: NewMessage
    text_key: str
    reason: str | None


async def add_queue_entries(session: AsyncSession, admissions: Iterable[Admission]) -> None:
    """Record the verdicts in one statement (a verdict another process wrote first is kept)."""
    rows = [
        {
            "message_id": a.message.message_id,
            "state": "open" if a.reason is None else "held",
            "reason": a.reason,
            "text_key": a.text_key,
            "author_id": a.message.author_id,
            "received_at": a.message.received_at,
        }
        for a in admissions
    ]
    if not rows:
        return
    table = QueueEntry.__table__
    stmt = upsert_statement(dialect_name(session), table, ("message_id",), ())
    if stmt is not None:
        await (await session.connection()).execute(stmt, rows)
        return
    for row in rows:
        await upsert(session, table, row, keys=["message_id"])


async def held_counts(session: AsyncSession) -> dict[str, int]:
    """Messages held out of the queue, per reason."""
    rows = await session.execute(
        select(QueueEntry.reason, func.count())
        .where(QueueEntry.state == "held")
        .group_by(QueueEntry.reason)
    )
    return {str(reason): int(n) for reason, n in rows}


HOUR = timedelta(hours=1)
