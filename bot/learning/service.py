"""`LearningService`: the learning loop's three parts over one database and one training lock.

    learning = LearningService.create(settings, sessionmaker, predictor, device="cpu")
    await learning.queue.next_item(user_id)         # LabelQueue: /label
    await learning.retrainer.retrain("admin", who)  # Retrainer: runs, gate, hot swap
    await learning.versions.rollback(who)           # ModelVersions: /models, /rollback, sync
    await learning.registry.entries()               # ModelRegistry: `sentibot models …`

`Runtime.open` builds it for the bot and the console chat; `sentibot retrain` builds one without
a predictor (the database's active version is what counts there).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.learning.annotators import AnnotatorDesk, AnnotatorList, annotator_list
from bot.learning.data import LearningOptions
from bot.learning.handout import QueueRules
from bot.learning.queue import LabelQueue
from bot.learning.registry import ModelRegistry
from bot.learning.resolution import LabelResolver
from bot.learning.results import LastRun, LearningStatus
from bot.learning.retrainer import Retrainer
from bot.learning.review import ReviewQueue
from bot.learning.served import ServedModel
from bot.learning.versions import ModelVersions
from classifier.predictor import Predictor
from storage import repositories as repo


@dataclass(eq=False)
class LearningService:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    served: ServedModel
    queue: LabelQueue
    retrainer: Retrainer
    versions: ModelVersions
    registry: ModelRegistry
    resolver: LabelResolver
    desk: AnnotatorDesk
    reviews: ReviewQueue

    @classmethod
    def create(
        cls,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        predictor: Predictor | None = None,
        *,
        device: str = "cpu",
        options: LearningOptions | None = None,
    ) -> LearningService:
        """Wire the parts: they share the served model and one training lock (a rollback and a
        training run never overlap)."""
        options = options or LearningOptions()
        served = ServedModel(sessionmaker, predictor, device, models_path=settings.models_path)
        lock = asyncio.Lock()
        versions = ModelVersions(sessionmaker, served, lock, options)
        resolver = LabelResolver(sessionmaker, served, settings.annotators)
        return cls(
            settings,
            sessionmaker,
            served,
            LabelQueue(sessionmaker, served, rules=QueueRules.from_settings(settings)),
            Retrainer(settings, sessionmaker, served, lock, options, resolver=resolver),
            versions,
            ModelRegistry(sessionmaker, settings.models_path, versions),
            resolver,
            AnnotatorDesk(sessionmaker),
            ReviewQueue(sessionmaker, served),
        )

    async def resolved_examples(self) -> list[repo.LabelledExample]:
        """Every labelled message with its resolved label (the export, the training data)."""
        return (await self.resolver.resolve()).examples

    async def annotator_list(self) -> AnnotatorList:
        """Each label source's count, reliability and agreement; alpha and kappa (named)."""
        return await self.desk.named(annotator_list(await self.resolver.resolve()))

    async def status(self) -> LearningStatus:
        """The learning part of /status: a run in progress, the last run, the schedule, and the
        annotators' agreement when items go to several people (LABELS_PER_ITEM ≥ 2)."""
        async with self.sessionmaker() as session:
            run = await repo.last_training_run(session, status=None)
            last = None
            if run is not None:
                result = run.decision or run.status
                last = LastRun(run.started_at, run.trigger, run.candidate_version, result)
            curve = await repo.last_learning_curve(session)
            pending = await repo.pending_review_count(session)
            labelled = await repo.count_labels(session)
        several = self.settings.labels_per_item >= 2
        return LearningStatus(
            training=self.retrainer.training,
            last_run=last,
            interval_minutes=self.settings.retrain_interval_minutes,
            min_new_labels=self.settings.retrain_min_new_labels,
            annotators=await self.queue.annotators() if several else None,
            annotator_list=await self.annotator_list() if labelled else None,
            learning_curve=curve,
            pending_reviews=pending,
        )

    async def close(self) -> None:
        """Stop a running worker (its run is recorded as failed)."""
        await self.retrainer.close()
