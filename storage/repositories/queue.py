"""The /label queue: which message a person should label next, ordered by model uncertainty."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Label, Message, Prediction, QueueClaim, QueueEntry, QueueSkip, utcnow
from storage.repositories._common import upsert


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A message to label. `margin` None = no prediction under the active version (cold start)."""

    message_id: int
    text: str
    predicted_label: str | None
    confidence: float | None
    margin: float | None
    author_id: int | None = None
    chat_id: int | None = None


def _closed_messages(labels_per_item: int):
    """Ids of messages that left the queue: a unique majority label and at least
    `labels_per_item` labels. Computed from the labels table alone, so its cost grows with the
    number of labels, not with the number of messages."""
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
    return (
        select(per_label.c.message_id)
        .join(
            per_message,
            and_(
                per_label.c.message_id == per_message.c.message_id,
                per_label.c.n == per_message.c.top,
            ),
        )
        .group_by(per_label.c.message_id)
        .having(func.count() == 1, func.max(per_message.c.total) >= labels_per_item)
    )


def _mine(user_id: int):
    return select(Label.message_id).where(Label.user_id == user_id)


def _skipped(user_id: int):
    return select(QueueSkip.message_id).where(QueueSkip.user_id == user_id)


def _held():
    return select(QueueEntry.message_id).where(QueueEntry.state == "held")


def _not_held(message_id: Any) -> ColumnElement[bool]:
    """Not held out of the queue (over the hourly author cap, or a duplicate text)."""
    return ~exists().where(QueueEntry.message_id == message_id, QueueEntry.state == "held")


def live_claims_of_others(message_id: Any, user_id: int, now: datetime):
    """A scalar subquery: live claims on `message_id` held by people other than `user_id`."""
    return (
        select(func.count())
        .where(
            QueueClaim.message_id == message_id,
            QueueClaim.user_id != user_id,
            QueueClaim.expires_at > now,
        )
        .correlate_except(QueueClaim)
        .scalar_subquery()
    )


def claim_room(message_id: Any, user_id: int, labels_per_item: int, now: datetime):
    """True when one more person may hold the item: fewer live claims by others than the labels
    it still lacks (at least one: a tie waits for one more person)."""
    labels = (
        select(func.count())
        .where(Label.message_id == message_id)
        .correlate_except(Label)
        .scalar_subquery()
    )
    room = case((labels >= labels_per_item - 1, 1), else_=labels_per_item - labels)
    return live_claims_of_others(message_id, user_id, now) < room


def queue_order() -> tuple[Any, ...]:
    """The queue's order over the active version's predictions: the smallest top-2 margin first
    (ties by message id). The one place to change it (the index walk of `most_uncertain` and
    `queue_candidates` follows `ix_predictions_version_margin`)."""
    return (Prediction.margin, Prediction.message_id)


def queue_eligible(user_id: int, labels_per_item: int) -> Select:
    """A SELECT over messages for the items this person may be shown: still open, and neither
    labelled nor skipped by them (the cold-start pick; the closed set is computed once)."""
    return select(Message.id, Message.text, Message.user_id, Message.chat_id).where(
        Message.id.not_in(_closed_messages(labels_per_item)),
        ~exists().where(Label.message_id == Message.id, Label.user_id == user_id),
        ~exists().where(QueueSkip.message_id == Message.id, QueueSkip.user_id == user_id),
        _not_held(Message.id),
    )


def _is_closed(message_id: Any, labels_per_item: int) -> ColumnElement[bool]:
    """`message_id` has at least `labels_per_item` labels and one label with more votes than
    any other: `_closed_messages` for one row, as correlated lookups on its few labels."""
    votes, others, every = aliased(Label), aliased(Label), aliased(Label)
    # correlate_except: the outer row's message id is seen through two levels of subqueries.
    total = (
        select(func.count())
        .where(every.message_id == message_id)
        .correlate_except(every)
        .scalar_subquery()
    )
    runner_up = (
        select(func.count())
        .where(others.message_id == message_id, others.label != votes.label)
        .group_by(others.label)
        .order_by(func.count().desc())
        .limit(1)
        .correlate_except(others)
        .scalar_subquery()
    )
    has_winner = exists(
        select(votes.label)
        .where(votes.message_id == message_id)
        .group_by(votes.label)
        .having(func.count() > func.coalesce(runner_up, 0))
        .correlate_except(votes)
    )
    return and_(total >= labels_per_item, has_winner)


def most_uncertain(
    user_id: int,
    active_version: str,
    labels_per_item: int = 1,
    *,
    now: datetime | None = None,
    limit: int = 1,
) -> Select:
    """The open message, not labelled or skipped by this person, whose latest `active_version`
    prediction has the smallest margin.

    SQLite walks `ix_predictions_version_margin` in order and tests each row, cheapest test
    first, until one passes: every test is a lookup on the row's message id, so the cost grows
    with the number of done items ahead of the first open one, not with the message count.
    With `now`, items other people hold (live claims, `claim_room`) are passed over too; `limit`
    gives the first few in order (the queue then picks a diverse one).
    """
    mid = Prediction.message_id
    newer = aliased(Prediction)
    tests = [
        Prediction.model_version == active_version,
        ~exists().where(Label.message_id == mid, Label.user_id == user_id),
        ~exists().where(QueueSkip.message_id == mid, QueueSkip.user_id == user_id),
        _not_held(mid),
        ~_is_closed(mid, labels_per_item),
        ~exists().where(
            newer.message_id == mid,
            newer.model_version == Prediction.model_version,
            newer.id > Prediction.id,
        ),
    ]
    if now is not None:
        tests.append(claim_room(mid, user_id, labels_per_item, now))
    return (
        select(
            Message.id,
            Message.text,
            Prediction.label,
            Prediction.confidence,
            Prediction.margin,
            Message.user_id,
            Message.chat_id,
        )
        .select_from(Prediction)
        .join(Message, Message.id == mid)
        .where(*tests)
        .order_by(*queue_order())
        .limit(limit)
    )


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

    The scored case is `most_uncertain`: an index walk in margin order (migration 0002).
    """
    base = queue_eligible(user_id, labels_per_item)
    if active_version is not None:
        stmt = most_uncertain(user_id, active_version, labels_per_item)
        row = (await session.execute(stmt)).first()
        if row is not None:
            return _item(row)
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
    return None if row is None else _item(row)


def _item(row: Any) -> QueueItem:
    """A result row of `most_uncertain` or `queue_eligible` as a QueueItem."""
    mapping = row._mapping
    return QueueItem(
        row.id,
        row.text,
        mapping.get("label"),
        mapping.get("confidence"),
        mapping.get("margin"),
        row.user_id,
        row.chat_id,
    )


async def queue_candidates(
    session: AsyncSession,
    user_id: int,
    *,
    active_version: str | None,
    labels_per_item: int,
    now: datetime,
    limit: int,
) -> list[QueueItem]:
    """The first `limit` items for this person in queue order that nobody else holds: scored by
    the active version first (`queue_order`), then unscored ones from a random place (cold start).
    """
    items: list[QueueItem] = []
    base = queue_eligible(user_id, labels_per_item).where(
        claim_room(Message.id, user_id, labels_per_item, now)
    )
    if active_version is not None:
        stmt = most_uncertain(user_id, active_version, labels_per_item, now=now, limit=limit)
        items = [_item(row) for row in await session.execute(stmt)]
        base = base.where(
            ~exists().where(
                Prediction.message_id == Message.id, Prediction.model_version == active_version
            )
        )
    want = limit - len(items)
    if want <= 0:
        return items
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    if total:
        offset = random.randrange(max(1, total - want + 1))
        rows = await session.execute(base.order_by(Message.id).offset(offset).limit(want))
        items += [_item(row) for row in rows]
    return items


async def skip_queue_item(session: AsyncSession, user_id: int, message_id: int) -> None:
    """Remember that this person skipped this message: it never comes back to them."""
    await upsert(
        session,
        QueueSkip.__table__,
        {"user_id": user_id, "message_id": message_id, "created_at": utcnow()},
        keys=["user_id", "message_id"],
    )


async def queue_remaining(session: AsyncSession, user_id: int, *, labels_per_item: int = 1) -> int:
    """How many messages are still in this person's queue.

    All messages minus those closed, labelled or skipped by this person: the set difference is
    taken over the (small) labels and skips tables, so only the plain message count scans.
    """
    done = union(
        _closed_messages(labels_per_item), _mine(user_id), _skipped(user_id), _held()
    ).subquery()
    total = await session.scalar(select(func.count()).select_from(Message))
    gone = await session.scalar(select(func.count()).select_from(done))
    return max(0, int(total or 0) - int(gone or 0))


async def unscored_messages(
    session: AsyncSession, version: str, limit: int
) -> list[tuple[int, str]]:
    """(id, text) of unlabelled messages without a prediction by `version`, newest first (what
    the learning loop re-scores after a model change, so the queue follows the served model)."""
    result = await session.execute(
        select(Message.id, Message.text)
        .where(~exists().where(Label.message_id == Message.id))
        .where(_not_held(Message.id))
        .where(
            ~exists().where(
                Prediction.message_id == Message.id, Prediction.model_version == version
            )
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return [(int(message_id), text) for message_id, text in result.all()]
