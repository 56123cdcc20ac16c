"""Handing out /label items: admission of new messages, a diverse pick, a claim in the database.

`Handout.pick(user)` admits messages the queue has not looked at yet (`diversity.admit`: the
hourly author cap and exact duplicates), reads the first `CANDIDATES` items in queue order that
nobody else holds, puts near duplicates and over-cap authors/chats last
(`diversity.preferred_order`), and claims the first one it can (`repo.claim_item`: at most
LABELS_PER_ITEM people hold an item at once, across processes, until QUEUE_CLAIM_MINUTES pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.learning import diversity
from bot.learning.served import ServedModel
from storage import repositories as repo
from storage.models import utcnow

CANDIDATES = 20  # items in queue order the diversity rules choose from
ADMIT_BATCH = 2000  # new messages admitted per pick (a large backlog drains over several)
RECENT_LABELLED = 2000  # labelled texts a near duplicate is looked for among
PICK_TRIES = 3  # fresh reads when other people claimed every candidate meanwhile


@dataclass(frozen=True)
class QueueRules:
    """The hand-out settings (docs/learning.md, "A diverse queue")."""

    labels_per_item: int = 1
    claim_minutes: float = 15.0
    max_per_author_hour: int = 10
    caps: diversity.RoundCaps = field(default_factory=diversity.RoundCaps)
    similarity: float = 0.7

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueRules:
        return cls(
            labels_per_item=settings.labels_per_item,
            claim_minutes=settings.queue_claim_minutes,
            max_per_author_hour=settings.queue_max_per_author_hour,
            caps=diversity.RoundCaps(
                settings.queue_round_max_per_author, settings.queue_round_max_per_chat
            ),
            similarity=settings.queue_similarity,
        )


class Handout:
    """Admission and the diverse, claimed pick for one database and served model."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        served: ServedModel,
        rules: QueueRules,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.served = served
        self.rules = rules
        self._tokens: dict[int, frozenset] = {}  # message id → token set, for `_version`
        self._version: str | None = None

    async def admit(self) -> int:
        """Admit (or hold out) messages the queue has not looked at yet; returns how many."""
        async with self.sessionmaker() as session:
            new = await repo.unadmitted_messages(session, ADMIT_BATCH)
            if not new:
                return 0
            keys = {diversity.text_key(m.text) for m in new}
            open_keys = await repo.open_text_keys(session, keys)
            authors = {m.author_id for m in new if m.author_id is not None}
            since = new[0].received_at - diversity.WINDOW
            times = await repo.open_entry_times(session, authors, since)
        verdicts = diversity.admit(new, open_keys, times, self.rules.max_per_author_hour)
        async with self.sessionmaker.begin() as session:
            await repo.add_queue_entries(session, verdicts)
        return len(verdicts)

    async def pick(self, user_id: int) -> repo.QueueItem | None:
        """Claim the next item for this person (releasing the one they held); None: none left."""
        await self.admit()
        for _ in range(PICK_TRIES):
            now = utcnow()
            async with self.sessionmaker() as session:
                version = await self.served.active_version(session)
                candidates = await repo.queue_candidates(
                    session,
                    user_id,
                    active_version=version,
                    labels_per_item=self.rules.labels_per_item,
                    now=now,
                    limit=CANDIDATES,
                )
                shown = await repo.shown_in_round(session, version) if candidates else []
                recent = await repo.recently_labelled(session, RECENT_LABELLED)
            order = await self._order(candidates, shown, recent, version)
            async with self.sessionmaker.begin() as session:
                await repo.release_claims_of(session, user_id, now)
                for item in order:
                    if await self._claim(session, item.message_id, user_id, version):
                        return item
            if not candidates:
                return None
        return None

    async def claim_again(self, user_id: int, message_id: int) -> None:
        """Undo shows the person's item again: it is theirs again (whoever else holds it)."""
        async with self.sessionmaker.begin() as session:
            version = await self.served.active_version(session)
            await repo.release_claims_of(session, user_id, utcnow())
            await self._claim(session, message_id, user_id, version, force=True)

    async def _claim(
        self,
        session: AsyncSession,
        message_id: int,
        user_id: int,
        version: str | None,
        *,
        force: bool = False,
    ) -> bool:
        now = utcnow()
        return await repo.claim_item(
            session,
            message_id,
            user_id,
            labels_per_item=self.rules.labels_per_item,
            now=now,
            expires_at=now + timedelta(minutes=self.rules.claim_minutes),
            round_version=version,
            force=force,
        )

    async def _order(
        self,
        candidates: Sequence[repo.QueueItem],
        shown: Sequence[repo.ShownItem],
        recent: Sequence[tuple[int, str]],
        version: str | None,
    ) -> list[repo.QueueItem]:
        """The candidates with near duplicates and over-cap authors/chats last."""
        if len(candidates) <= 1:
            return list(candidates)
        seen = {m: t for m, t in recent} | {s.message_id: s.text for s in shown}
        for item in candidates:
            seen.pop(item.message_id, None)
        texts = {item.message_id: item.text for item in candidates} | seen
        tokens = await self._token_sets(texts, version)
        duplicate = diversity.near_duplicates(
            [tokens[item.message_id] for item in candidates],
            [tokens[m] for m in seen],
            self.rules.similarity,
        )
        return diversity.preferred_order(candidates, shown, duplicate, self.rules.caps)

    async def _token_sets(self, texts: dict[int, str], version: str | None) -> dict[int, frozenset]:
        """Token sets under the served model's tokenizer, cached per model version."""
        classifier = None if self.served.predictor is None else self.served.predictor.classifier
        if classifier is None:  # the CLI: no tokenizer at hand, no near-duplicate check
            return {m: frozenset() for m in texts}
        if version != self._version:
            self._tokens, self._version = {}, version
        missing = [m for m in texts if m not in self._tokens]
        if missing:

            def tokenize(batch: list[str]) -> list:
                return classifier.text_encoder.tokenize(batch, classifier.max_tokens)

            sets = await asyncio.to_thread(
                diversity.token_sets, tokenize, [texts[m] for m in missing]
            )
            self._tokens.update(zip(missing, sets, strict=True))
        return {m: self._tokens[m] for m in texts}
