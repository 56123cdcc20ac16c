"""Labels: one row per message and person, every change kept in `label_history`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import NotFoundError
from storage.models import LABEL_SOURCES, Label, LabelHistory, Message, utcnow
from storage.repositories.messages import upsert_user


@dataclass(frozen=True, slots=True)
class LabelChange:
    """What `set_label` did: `action` is `set` (new), `replace` (changed) or `unchanged`."""

    message_id: int
    label: str
    previous: str | None
    action: str


@dataclass(frozen=True, slots=True)
class UndoneLabel:
    """The label `undo_last_label` removed (show `message_id` again to the person)."""

    message_id: int
    label: str
    source: str


def majority(labels: Iterable[str]) -> str | None:
    """The label given strictly more often than any other; None on a tie or no labels."""
    ranked = Counter(labels).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _user_filter(user_id: int | None):
    return Label.user_id.is_(None) if user_id is None else Label.user_id == user_id


async def set_label(
    session: AsyncSession,
    message_id: int,
    user_id: int | None,
    label: str,
    *,
    source: str,
    allowed: Collection[str] | None = None,
) -> LabelChange:
    """Record this person's label for a message, replacing their earlier one (history kept).

    `user_id` None means an import label. `source` is `inline` | `queue` | `import`; `allowed`
    (the configured label list) is checked when given. Raises `NotFoundError` when the message
    does not exist (e.g. a stale button after /forget) and `ValueError` on a bad label/source.
    """
    if source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {source!r} (expected one of {LABEL_SOURCES})")
    if allowed is not None and label not in allowed:
        raise ValueError(f"unknown label {label!r} (expected one of {', '.join(allowed)})")
    if await session.scalar(select(Message.id).where(Message.id == message_id)) is None:
        raise NotFoundError(f"message {message_id} does not exist (deleted or forgotten)")
    if user_id is not None:
        await upsert_user(session, user_id)
    row = await session.scalar(
        select(Label).where(Label.message_id == message_id, _user_filter(user_id))
    )
    now = utcnow()
    if row is None:
        session.add(
            Label(
                message_id=message_id,
                user_id=user_id,
                label=label,
                source=source,
                created_at=now,
                updated_at=now,
            )
        )
        previous, action = None, "set"
    elif row.label == label and row.source == source:
        return LabelChange(message_id, label, label, "unchanged")
    else:
        previous, action = row.label, "replace"
        row.label, row.source, row.updated_at = label, source, now
    session.add(
        LabelHistory(
            message_id=message_id,
            user_id=user_id,
            action=action,
            label=label,
            previous_label=previous,
            source=source,
            created_at=now,
        )
    )
    await session.flush()
    return LabelChange(message_id, label, previous, action)


async def _delete_label(session: AsyncSession, row: Label) -> UndoneLabel:
    session.add(
        LabelHistory(
            message_id=row.message_id,
            user_id=row.user_id,
            action="undo",
            label=None,
            previous_label=row.label,
            source=row.source,
            created_at=utcnow(),
        )
    )
    undone = UndoneLabel(row.message_id, row.label, row.source)
    await session.delete(row)
    await session.flush()
    return undone


async def remove_label(
    session: AsyncSession, message_id: int, user_id: int | None
) -> UndoneLabel | None:
    """Remove this person's label for this message (kept in history); None if they had none."""
    row = await session.scalar(
        select(Label).where(Label.message_id == message_id, _user_filter(user_id))
    )
    return None if row is None else await _delete_label(session, row)


async def undo_last_label(
    session: AsyncSession, user_id: int, *, source: str | None = None
) -> UndoneLabel | None:
    """Remove this person's most recently set/changed label (optionally of one source).

    The /label queue's Undo passes `source="queue"`. Returns what was removed, or None.
    """
    stmt = select(Label).where(Label.user_id == user_id)
    if source is not None:
        stmt = stmt.where(Label.source == source)
    row = await session.scalar(stmt.order_by(Label.updated_at.desc(), Label.id.desc()).limit(1))
    return None if row is None else await _delete_label(session, row)


async def labels_for_message(session: AsyncSession, message_id: int) -> list[Label]:
    """Current labels of a message, oldest first."""
    result = await session.scalars(
        select(Label).where(Label.message_id == message_id).order_by(Label.created_at, Label.id)
    )
    return list(result)


async def get_label(session: AsyncSession, message_id: int, user_id: int | None) -> str | None:
    """This person's current label for the message, or None."""
    return await session.scalar(
        select(Label.label).where(Label.message_id == message_id, _user_filter(user_id))
    )


async def resolved_labels(
    session: AsyncSession, message_ids: Collection[int]
) -> dict[int, str | None]:
    """Resolved label per message id (majority; None for a tie or no labels)."""
    counts: dict[int, list[str]] = defaultdict(list)
    if message_ids:
        rows = await session.execute(
            select(Label.message_id, Label.label).where(Label.message_id.in_(list(message_ids)))
        )
        for mid, label in rows:
            counts[mid].append(label)
    return {mid: majority(counts.get(mid, ())) for mid in message_ids}


async def resolved_label(session: AsyncSession, message_id: int) -> str | None:
    """The majority label of a message; None when it has no labels or a tie."""
    return (await resolved_labels(session, [message_id]))[message_id]


async def label_history(session: AsyncSession, message_id: int) -> list[LabelHistory]:
    """Every label change for a message, oldest first."""
    result = await session.scalars(
        select(LabelHistory).where(LabelHistory.message_id == message_id).order_by(LabelHistory.id)
    )
    return list(result)


async def count_labels(session: AsyncSession, user_id: int | None = None) -> int:
    """Number of current label rows (of one person when `user_id` is given)."""
    stmt = select(func.count()).select_from(Label)
    if user_id is not None:
        stmt = stmt.where(Label.user_id == user_id)
    return int(await session.scalar(stmt) or 0)
