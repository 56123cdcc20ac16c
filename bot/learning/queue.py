"""The /label queue: next item, label, skip, undo; annotator counts and agreement for /status.

Order and bookkeeping live in storage (`queue_order`: smallest top-two margin under the active
model first, random at cold start; items a person labelled or skipped never come back); the
hand-out (admission, diversity, claims across processes) in `bot.learning.handout`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.learning.agreement import pairwise_agreement
from bot.learning.errors import LearningError
from bot.learning.handout import Handout, QueueRules
from bot.learning.results import AnnotatorReport, QueueView
from bot.learning.served import ServedModel
from storage import repositories as repo
from storage.errors import NotFoundError
from storage.models import utcnow


class LabelQueue:
    """The annotators' queue over one database, ordered by the served model's uncertainty.

    Items are handed out through `Handout` (admission, diversity, claims); a label through the
    queue is accepted only for an item the queue offered that person (their claim).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        served: ServedModel,
        *,
        labels_per_item: int = 1,
        rules: QueueRules | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.served = served
        self.rules = rules or QueueRules(labels_per_item=labels_per_item)
        self.labels_per_item = self.rules.labels_per_item
        self.handout = Handout(sessionmaker, served, self.rules)

    async def next_item(self, user_id: int) -> QueueView:
        """Claim the next message for this person (uncertain first) and say how many are left."""
        if await self._excluded(user_id):
            return QueueView(None, 0, self.served.labels, paused=True)
        item = await self.handout.pick(user_id)
        async with self.sessionmaker() as session:
            return QueueView(item, await self._remaining(session, user_id), self.served.labels)

    async def stop(self, user_id: int) -> int:
        """The person stops: their item is free for others again. Returns how many are left."""
        async with self.sessionmaker.begin() as session:
            await repo.release_claims_of(session, user_id, utcnow())
        async with self.sessionmaker() as session:
            return await self._remaining(session, user_id)

    async def _remaining(self, session: AsyncSession, user_id: int) -> int:
        return await repo.queue_remaining(session, user_id, labels_per_item=self.labels_per_item)

    async def _excluded(self, user_id: int) -> bool:
        async with self.sessionmaker() as session:
            state = (await repo.annotator_states(session)).get(str(user_id))
        return state is not None and state.excluded

    async def label(self, user_id: int, message_id: int, label: str) -> QueueView:
        """Record this person's queue label for a message, then show their next item.

        Raises `LearningError` for a label the model does not know, a message that is gone or
        that the queue never offered this person, a person an admin excluded, or a person who
        opted out with /forget (nothing of theirs is stored until /start).
        """
        if label not in self.served.labels:
            raise LearningError(texts.UNKNOWN_LABEL.format(label=label))
        if await self._excluded(user_id):
            raise LearningError(texts.QUEUE_PAUSED_SHORT)
        try:
            async with self.sessionmaker.begin() as session:
                if await repo.is_opted_out(session, user_id):  # /forget: store nothing of theirs
                    raise LearningError(texts.OPTED_OUT)
                if not await repo.has_claim(session, message_id, user_id):
                    raise LearningError(texts.NOT_OFFERED)
                await repo.set_label(session, message_id, user_id, label, source="queue")
                await repo.release_claim(session, message_id, user_id, utcnow())
        except NotFoundError:
            raise LearningError(texts.MESSAGE_GONE) from None
        return await self.next_item(user_id)

    async def skip(self, user_id: int, message_id: int) -> QueueView:
        """This person skips the message for good; show their next item."""
        with contextlib.suppress(IntegrityError):  # a vanished message needs no skip record
            async with self.sessionmaker.begin() as session:
                if not await repo.is_opted_out(session, user_id):  # /forget: no queue state
                    await repo.skip_queue_item(session, user_id, message_id)
                await repo.release_claim(session, message_id, user_id, utcnow())
        return await self.next_item(user_id)

    async def undo(self, user_id: int) -> QueueView | None:
        """Remove this person's last queue label and show that item again (None: no label)."""
        async with self.sessionmaker.begin() as session:
            undone = await repo.undo_last_label(session, user_id, source="queue")
            if undone is None:
                return None
            message = await repo.get_message(session, undone.message_id)
            remaining = await self._remaining(session, user_id)
            version = await self.served.active_version(session)
            guess = await repo.latest_prediction(session, undone.message_id, version)
        if message is None:
            return await self.next_item(user_id)
        await self.handout.claim_again(user_id, message.id)
        if guess is None:
            item = repo.QueueItem(message.id, message.text, None, None, None)
        else:
            item = repo.QueueItem(
                message.id, message.text, guess.label, guess.confidence, guess.margin
            )
        return QueueView(item, remaining, self.served.labels)

    async def annotators(self) -> AnnotatorReport:
        """Labels per person, pairwise Cohen's kappa on items labelled by both, and names."""
        async with self.sessionmaker() as session:
            counts = await repo.annotator_counts(session)
            by_person: dict[int, dict[int, str]] = defaultdict(dict)
            for pair in await repo.annotator_pairs(session):
                by_person[pair.user_a][pair.message_id] = pair.label_a
                by_person[pair.user_b][pair.message_id] = pair.label_b
            names = await repo.user_names(session, set(counts) | set(by_person))
        return AnnotatorReport(counts, pairwise_agreement(by_person), names)
