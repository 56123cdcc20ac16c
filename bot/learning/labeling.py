"""The /label queue: next item, label, skip, undo; annotator counts and agreement for /status.

Order and bookkeeping live in storage (`next_queue_item`: smallest top-two margin under the
active model first, random at cold start; items a person labelled or skipped never come back).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import TYPE_CHECKING

from bot.agreement import pairwise_agreement
from bot.learning.core import LearningCore
from bot.learning.errors import LearningError
from bot.learning.results import AnnotatorReport, QueueView

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


OPTED_OUT = "you asked me to forget you, so I don't store your labels; /start to opt back in"


class LabelingQueue(LearningCore):
    """The queue operations of `LearningService`."""

    async def _view(self, session: AsyncSession, user_id: int) -> QueueView:
        from storage import repositories as repo

        per_item = self.settings.labels_per_item
        item = await repo.next_queue_item(
            session,
            user_id,
            active_version=await self._active_version(session),
            labels_per_item=per_item,
        )
        remaining = await repo.queue_remaining(session, user_id, labels_per_item=per_item)
        return QueueView(item, remaining, self.labels)

    async def next_item(self, user_id: int) -> QueueView:
        """The next message for this person to label (uncertain first), and how many are left."""
        async with self.sessionmaker() as session:
            return await self._view(session, user_id)

    async def label(self, user_id: int, message_id: int, label: str) -> QueueView:
        """Record this person's queue label for a message, then show their next item.

        Raises `LearningError` for a label the model does not know, a message that is gone, or
        a person who opted out with /forget (nothing of theirs is stored until /start).
        """
        from storage import repositories as repo
        from storage.errors import NotFoundError

        if label not in self.labels:
            raise LearningError(f"unknown label {label!r}")
        try:
            async with self.sessionmaker.begin() as session:
                if await repo.is_opted_out(session, user_id):  # /forget: store nothing of theirs
                    raise LearningError(OPTED_OUT)
                await repo.set_label(session, message_id, user_id, label, source="queue")
        except NotFoundError:
            raise LearningError("that message is gone (deleted or forgotten)") from None
        return await self.next_item(user_id)

    async def skip(self, user_id: int, message_id: int) -> QueueView:
        """This person skips the message for good; show their next item."""
        from sqlalchemy.exc import IntegrityError

        from storage import repositories as repo

        with contextlib.suppress(IntegrityError):  # a vanished message needs no skip record
            async with self.sessionmaker.begin() as session:
                if not await repo.is_opted_out(session, user_id):  # /forget: no queue state
                    await repo.skip_queue_item(session, user_id, message_id)
        return await self.next_item(user_id)

    async def undo(self, user_id: int) -> QueueView | None:
        """Remove this person's last queue label and show that item again (None: no label)."""
        from storage import repositories as repo

        async with self.sessionmaker.begin() as session:
            undone = await repo.undo_last_label(session, user_id, source="queue")
            if undone is None:
                return None
            message = await repo.get_message(session, undone.message_id)
            remaining = await repo.queue_remaining(
                session, user_id, labels_per_item=self.settings.labels_per_item
            )
            version = await self._active_version(session)
            guess = await repo.latest_prediction(session, undone.message_id, version)
        if message is None:
            return await self.next_item(user_id)
        if guess is None:
            item = repo.QueueItem(message.id, message.text, None, None, None)
        else:
            item = repo.QueueItem(
                message.id, message.text, guess.label, guess.confidence, guess.margin
            )
        return QueueView(item, remaining, self.labels)

    # --- annotators ---------------------------------------------------------------------------
    async def annotators(self) -> AnnotatorReport:
        """Labels per person and pairwise Cohen's kappa on items labelled by both."""
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            counts = await repo.annotator_counts(session)
            pairs = await repo.annotator_pairs(session)
        return AnnotatorReport(counts, pairwise_agreement(_labels_by_person(pairs)))

    async def status_section(self, session: AsyncSession) -> tuple[str, list[str]] | None:
        """The learning part of /status (HTML-safe lines), read with the caller's session."""
        from html import escape

        from storage import repositories as repo

        lines = []
        if self.training:
            lines.append("a training run is in progress")
        last = await repo.last_training_run(session, status=None)
        if last is not None:
            when = f"{last.started_at:%Y-%m-%d %H:%M} UTC" if last.started_at else "?"
            what = last.decision or last.status
            cand = f" {last.candidate_version}" if last.candidate_version else ""
            lines.append(escape(f"last training run: {when} ({last.trigger}){cand} {what}"))
        minutes = self.settings.retrain_interval_minutes
        lines.append(
            escape(
                f"scheduled retraining every {minutes:g} min with ≥ "
                f"{self.settings.retrain_min_new_labels} new labels"
                if minutes
                else "scheduled retraining is off (RETRAIN_INTERVAL_MINUTES=0)"
            )
        )
        if self.settings.labels_per_item >= 2:
            lines += await self._agreement_lines(session)
        return ("Learning", lines)

    async def _agreement_lines(self, session: AsyncSession) -> list[str]:
        from html import escape

        from bot.agreement import describe_kappa
        from storage import repositories as repo

        counts = await repo.annotator_counts(session)
        by_person = _labels_by_person(await repo.annotator_pairs(session))
        names = await _names(session, set(counts) | set(by_person))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        per_person = ", ".join(f"{names[uid]}: {n}" for uid, n in ranked) or "none yet"
        lines = [f"labels per annotator: {per_person}"]
        for p in pairwise_agreement(by_person):
            kappa = "n/a" if p.kappa is None else f"{p.kappa:.2f}"
            lines.append(
                f"agreement {names[p.annotator_a]} ↔ {names[p.annotator_b]}: Cohen's κ {kappa} "
                f"({describe_kappa(p.kappa)}) on {p.n} shared items, {p.observed:.0%} identical"
            )
        return [escape(line) for line in lines]


def _labels_by_person(pairs) -> dict[int, dict[int, str]]:
    """{annotator: {message_id: label}} from storage's pairs of labels on shared items."""
    by_person: dict[int, dict[int, str]] = defaultdict(dict)
    for pair in pairs:
        by_person[pair.user_a][pair.message_id] = pair.label_a
        by_person[pair.user_b][pair.message_id] = pair.label_b
    return by_person


async def _names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    """@username (or first name, or the id) of each person, for /status."""
    from storage.models import User

    names = {}
    for uid in user_ids:
        user = await session.get(User, uid)
        if user is not None and user.username:
            names[uid] = f"@{user.username}"
        elif user is not None and user.first_name:
            names[uid] = f"{user.first_name} ({uid})"
        else:
            names[uid] = str(uid)
    return names
