"""/review: labels the data contradicts, for admins and annotators to settle; and what a retrain
records of its checks on the labels.

After each retrain the worker's suspects (`bot.learning.suspects`) replace the pending reviews
(settled ones stay settled); until someone reviews it a suspect counts `REVIEW_PENDING_WEIGHT`
of its weight in training (`bot.learning.resolution`). /review shows the most suspicious first:
Keep (the label stands), Change to … (the reviewer's label becomes the message's label), Skip
(this person does not see it again in this session). Every answer is in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.learning.annotators import AnnotatorDesk
from bot.learning.resolution import Resolved
from bot.learning.results import RetrainOutcome
from bot.learning.served import ServedModel
from storage import repositories as repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewView:
    """What the /review message shows: a suspect (None: none left) and how many are left."""

    item: repo.ReviewItem | None
    left: int
    labels: list[str] = field(default_factory=list)


class ReviewQueue:
    """The pending reviews over one database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], served: ServedModel):
        self.sessionmaker = sessionmaker
        self.served = served

    async def next(self, skip: Collection[int] = ()) -> ReviewView:
        """The most suspicious pending label not in `skip` (this session's skips)."""
        async with self.sessionmaker() as session:
            item, left = await repo.next_review(session, skip=skip)
        return ReviewView(item, left, self.served.labels)

    async def decide(self, user_id: int, message_id: int, label: str | None) -> bool:
        """Keep (`label` None: the given label) or change a pending label; audited. False when
        it is no longer pending (someone else settled it, or the message was forgotten)."""
        async with self.sessionmaker.begin() as session:
            item, _ = await repo.next_review(session, only=message_id)
            if item is None:
                return False
            chosen = item.given_label if label is None else label
            if chosen not in self.served.labels:
                return False
            row = await repo.decide_review(session, message_id, chosen, user_id)
            if row is None:
                return False
            arguments = {"message_id": message_id, "given": item.given_label, "label": chosen}
            await repo.add_audit(session, user_id, f"review_{row.status}", arguments)
        return True

    async def skip(self, user_id: int, message_id: int) -> None:
        """The person passes on this one (it stays pending for others); audited."""
        async with self.sessionmaker.begin() as session:
            await repo.add_audit(session, user_id, "review_skip", {"message_id": message_id})


async def record_checks(
    sessionmaker: async_sessionmaker[AsyncSession],
    outcome: RetrainOutcome,
    result: dict[str, Any],
    resolved: Resolved,
) -> None:
    """After a run: its suspects become the pending reviews, its learning curve goes into the
    run's details (for /status) and the outcome, and sources far below the rest are flagged.
    A failure here is logged; the run itself has been decided already."""
    try:
        suspects = [repo.Suspect(**s) for s in result.get("suspects") or []]
        async with sessionmaker.begin() as session:
            if "suspects" in result:
                outcome.suspects = await repo.replace_pending_reviews(
                    session, suspects, outcome.run_id
                )
            outcome.learning_curve = result.get("curve")
            if outcome.learning_curve is not None and outcome.run_id is not None:
                extra = {"learning_curve": outcome.learning_curve, "suspects": outcome.suspects}
                await repo.add_run_details(session, outcome.run_id, extra)
        outcome.flagged = await AnnotatorDesk(sessionmaker).record_flags(resolved)
        if outcome.flagged:
            ids = {int(s) for s, _ in outcome.flagged if s.lstrip("-").isdigit()}
            async with sessionmaker() as session:
                outcome.names = await repo.user_names(session, ids)
    except Exception:
        log.exception("recording the label checks of training run %s failed", outcome.run_id)
