"""What the weighted label resolution reads and keeps: every label row with its message, the
model's latest guess on labelled messages, annotator states (excluded, flagged) and the review
queue of suspicious labels."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AnnotatorState,
    Label,
    LabelReview,
    Message,
    Prediction,
    TrainingRun,
    utcnow,
)
from storage.repositories._common import upsert


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One person's (or an import's) current label for a message, with the message's text."""

    message_id: int
    user_id: int | None
    label: str
    source: str
    updated_at: datetime
    text: str
    author_id: int | None = None


async def label_rows(session: AsyncSession) -> list[LabelRow]:
    """Every current label with its message's text, ordered by message id."""
    rows = await session.execute(
        select(
            Label.message_id,
            Label.user_id,
            Label.label,
            Label.source,
            Label.updated_at,
            Message.text,
            Message.user_id,
        )
        .join(Message, Message.id == Label.message_id)
        .order_by(Label.message_id, Label.id)
    )
    return [LabelRow(*row) for row in rows]


async def model_guesses(
    session: AsyncSession, prefer_version: str | None
) -> dict[int, dict[str, float]]:
    """The model's probabilities for each labelled message: the latest prediction by
    `prefer_version` (the active model), else the latest by any version."""
    labelled = select(Label.message_id).distinct()
    rows = await session.execute(
        select(Prediction.message_id, Prediction.model_version, Prediction.probs)
        .where(Prediction.message_id.in_(labelled))
        .order_by(Prediction.message_id, Prediction.id)
    )
    guesses: dict[int, dict[str, float]] = {}
    preferred: set[int] = set()
    for mid, version, probs in rows:
        if version == prefer_version:
            preferred.add(mid)
            guesses[mid] = probs
        elif mid not in preferred:
            guesses[mid] = probs
    return guesses


# --- annotator states -----------------------------------------------------------------------------
async def annotator_states(session: AsyncSession) -> dict[str, AnnotatorState]:
    """Every recorded state, by label source."""
    return {row.source: row for row in await session.scalars(select(AnnotatorState))}


async def set_excluded(session: AsyncSession, source: str, excluded: bool, by: int | None) -> bool:
    """Exclude (or include again) a label source; returns whether that changed anything."""
    row = await session.get(AnnotatorState, source)
    if row is not None and row.excluded == excluded:
        return False
    if row is None:
        if not excluded:
            return False
        row = AnnotatorState(source=source)
        session.add(row)
    row.excluded, row.changed_by, row.changed_at = excluded, by, utcnow()
    await session.flush()
    return True


async def mark_flagged(session: AsyncSession, sources: Iterable[tuple[str, float]]) -> list[str]:
    """Record that the admins were told these sources look unreliable; returns the ones that were
    not flagged before (tell the admins about those only, once)."""
    new = []
    states = await annotator_states(session)
    for source, reliability in sources:
        row = states.get(source)
        if row is not None and row.flagged_at is not None:
            continue
        await upsert(
            session,
            AnnotatorState.__table__,
            {"source": source, "flagged_at": utcnow(), "reliability": reliability},
            keys=["source"],
            update_columns=["flagged_at", "reliability"],
        )
        new.append(source)
    return new


# --- the review queue -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Suspect:
    """A label the data contradicts: the given label's out-of-fold probability (`score`)."""

    message_id: int
    given_label: str
    suggested_label: str
    score: float


async def replace_pending_reviews(
    session: AsyncSession, suspects: Iterable[Suspect], run_id: int | None
) -> int:
    """The latest run's suspects replace the pending reviews; decided ones are kept (and not
    asked again). Returns how many are pending now."""
    suspects = list(suspects)
    await session.execute(delete(LabelReview).where(LabelReview.status == "pending"))
    decided = set(await session.scalars(select(LabelReview.message_id)))
    ids = [s.message_id for s in suspects]
    existing = set(await session.scalars(select(Message.id).where(Message.id.in_(ids))))
    added = 0
    now = utcnow()
    for s in suspects:
        if s.message_id in decided or s.message_id not in existing:
            continue
        session.add(
            LabelReview(
                message_id=s.message_id,
                given_label=s.given_label,
                suggested_label=s.suggested_label,
                score=s.score,
                run_id=run_id,
                status="pending",
                created_at=now,
            )
        )
        added += 1
    await session.flush()
    return added


@dataclass(frozen=True, slots=True)
class ReviewItem:
    message_id: int
    text: str
    given_label: str
    suggested_label: str
    score: float


async def next_review(
    session: AsyncSession, *, skip: Collection[int] = (), only: int | None = None
) -> tuple[ReviewItem | None, int]:
    """The most suspicious pending review (lowest score) not in `skip` (or the one of message
    `only`), and how many pending ones are left."""
    stmt = (
        select(
            LabelReview.message_id,
            Message.text,
            LabelReview.given_label,
            LabelReview.suggested_label,
            LabelReview.score,
        )
        .join(Message, Message.id == LabelReview.message_id)
        .where(LabelReview.status == "pending")
    )
    if skip:
        stmt = stmt.where(LabelReview.message_id.not_in(list(skip)))
    if only is not None:
        stmt = stmt.where(LabelReview.message_id == only)
    left = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    row = (await session.execute(stmt.order_by(LabelReview.score, LabelReview.message_id))).first()
    return (None if row is None else ReviewItem(*row)), left


async def decide_review(
    session: AsyncSession, message_id: int, label: str, by: int
) -> LabelReview | None:
    """Settle a pending review with the label to keep (`kept` when it is the given one, else
    `changed`); None when no such review is pending (decided meanwhile, or forgotten)."""
    row = await session.get(LabelReview, message_id)
    if row is None or row.status != "pending":
        return None
    row.status = "kept" if label == row.given_label else "changed"
    row.decided_label, row.decided_by, row.decided_at = label, by, utcnow()
    await session.flush()
    return row


async def review_states(session: AsyncSession) -> tuple[dict[int, str], set[int]]:
    """(decided label per reviewed message, messages whose review is pending)."""
    decided: dict[int, str] = {}
    pending: set[int] = set()
    rows = await session.execute(
        select(LabelReview.message_id, LabelReview.status, LabelReview.decided_label)
    )
    for mid, status, label in rows:
        if status == "pending":
            pending.add(int(mid))
        elif label is not None:
            decided[int(mid)] = label
    return decided, pending


# --- what a run found -----------------------------------------------------------------------------
async def add_run_details(session: AsyncSession, run_id: int, extra: dict) -> None:
    """Merge `extra` into a training run's `details` (the label checks of that run)."""
    run = await session.get(TrainingRun, run_id)
    if run is not None:
        run.details = {**(run.details or {}), **extra}
        await session.flush()


async def last_learning_curve(session: AsyncSession) -> dict | None:
    """The learning curve of the latest successful run that made one (for /status)."""
    details = await session.scalars(
        select(TrainingRun.details)
        .where(TrainingRun.status == "succeeded")
        .order_by(TrainingRun.id.desc())
        .limit(20)
    )
    for d in details:
        if d and d.get("learning_curve"):
            return d["learning_curve"]
    return None


async def pending_review_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(LabelReview).where(LabelReview.status == "pending")
        )
        or 0
    )
