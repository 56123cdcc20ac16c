"""The /label queue: which message a person should label next, ordered by model uncertainty."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Label, Message, Prediction, QueueSkip, utcnow
from storage.repositories._common import upsert


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A message to label. `margin` None = no prediction under the active version (cold start)."""

    message_id: int
    text: str
    predicted_label: str | None
    confidence: float | None
    margin: float | None


def _open_messages(labels_per_item: int):
    """Message ids that still need labels: fewer than `labels_per_item`, or a tie."""
    per_label = (
        select(Label.message_id, Label.label, func.count().label("n"))
        .group_by(Label.message_id, Label.label)
        .subquery()
    )
    per_message = (
        select(
            per_label.c.message_id,
            func.max(per_label.c.n).label("top"),
            func.sum(per_label.c.n).label("total"),
        )
        .group_by(per_label.c.message_id)
        .subquery()
    )
    at_top = (
        select(
            per_label.c.message_id,
            func.count().label("n_top"),
            func.max(per_message.c.total).label("total"),
        )
        .join(
            per_message,
            and_(
                per_label.c.message_id == per_message.c.message_id,
                per_label.c.n == per_message.c.top,
            ),
        )
        .group_by(per_label.c.message_id)
        .subquery()
    )
    # An item leaves the queue once it has a majority AND at least labels_per_item labels.
    return at_top, or_(
        at_top.c.message_id.is_(None), at_top.c.n_top > 1, at_top.c.total < labels_per_item
    )


def _eligible(user_id: int, labels_per_item: int):
    """A SELECT over messages (+ label stats) for items this person may be shown."""
    at_top, still_open = _open_messages(labels_per_item)
    mine = exists().where(Label.message_id == Message.id, Label.user_id == user_id)
    skipped = exists().where(QueueSkip.message_id == Message.id, QueueSkip.user_id == user_id)
    return (
        select(Message.id, Message.text)
        .outerjoin(at_top, at_top.c.message_id == Message.id)
        .where(still_open, ~mine, ~skipped)
    )


def _latest_predictions(active_version: str):
    latest = (
        select(Prediction.message_id, func.max(Prediction.id).label("pid"))
        .where(Prediction.model_version == active_version)
        .group_by(Prediction.message_id)
        .subquery()
    )
    return latest


async def next_queue_item(
    session: AsyncSession,
    user_id: int,
    *,
    active_version: str | None,
    labels_per_item: int = 1,
) -> QueueItem | None:
    """The next message for this person to label, or None when their queue is empty.

    Candidates: messages without a resolved label (or with fewer than `labels_per_item` labels)
    that this person has neither labelled nor skipped. Order: smallest top-2 margin of the latest
    prediction by `active_version` first; messages without such a prediction come after, in
    random order (cold start).
    """
    base = _eligible(user_id, labels_per_item)
    if active_version is not None:
        latest = _latest_predictions(active_version)
        stmt = (
            base.add_columns(Prediction.label, Prediction.confidence, Prediction.margin)
            .join(latest, latest.c.message_id == Message.id)
            .join(Prediction, Prediction.id == latest.c.pid)
            .order_by(Prediction.margin, Message.id)
            .limit(1)
        )
        row = (await session.execute(stmt)).first()
        if row is not None:
            return QueueItem(row.id, row.text, row.label, row.confidence, row.margin)
        unscored = base.where(
            ~exists().where(
                Prediction.message_id == Message.id, Prediction.model_version == active_version
            )
        )
    else:
        unscored = base
    # Random pick with portable SQL: count, then OFFSET a random row (no dialect's RANDOM()).
    total = await session.scalar(select(func.count()).select_from(unscored.subquery()))
    if not total:
        return None
    offset = random.randrange(int(total))
    row = (await session.execute(unscored.order_by(Message.id).offset(offset).limit(1))).first()
    return None if row is None else QueueItem(row.id, row.text, None, None, None)


async def skip_queue_item(session: AsyncSession, user_id: int, message_id: int) -> None:
    """Remember that this person skipped this message: it never comes back to them."""
    await upsert(
        session,
        QueueSkip.__table__,
        {"user_id": user_id, "message_id": message_id, "created_at": utcnow()},
        keys=["user_id", "message_id"],
    )


async def queue_remaining(session: AsyncSession, user_id: int, *, labels_per_item: int = 1) -> int:
    """How many messages are still in this person's queue."""
    base = _eligible(user_id, labels_per_item)
    return int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
