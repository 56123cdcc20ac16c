"""The model the running bot serves, as the learning loop sees it.

`ServedModel` wraps the bot's `Predictor` (None in the CLI, where the database's active version is
what counts) and the device models load on. A promotion, a rollback and a version activated by
another process all end in `swap`, which also re-scores the /label queue with the new model:
the queue's uncertainty order comes from the active model's predictions, so unlabelled messages
are scored by the new one (newest first, up to `RESCORE_LIMIT`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DEFAULT_LABELS
from bot.learning.folders import folder_path
from classifier.artifacts import load_model
from classifier.model import Classifier
from classifier.predictor import Predictor
from storage import repositories as repo

log = logging.getLogger(__name__)

RESCORE_LIMIT = 5000
RESCORE_CHUNK = 200


class ServedModel:
    """The running bot's `Predictor` (or None) and the device, for the parts of the loop."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        predictor: Predictor | None,
        device: str = "cpu",
        *,
        models_path: Path,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.predictor = predictor
        self.device = device
        self.models_path = models_path  # MODEL_DIR: registered folders are relative to it

    @property
    def labels(self) -> list[str]:
        """The served model's labels (the default labels without one)."""
        classifier = None if self.predictor is None else self.predictor.classifier
        return list(DEFAULT_LABELS if classifier is None else classifier.labels)

    async def active_version(self, session: AsyncSession) -> str | None:
        """The served version, else (CLI) the database's active one."""
        if self.predictor is not None:
            return self.predictor.version
        active = await repo.get_active_model_version(session)
        return None if active is None else active.version

    def folder(self, row: Any) -> Path:
        """A `model_versions` row's folder (relative ones are under MODEL_DIR)."""
        return folder_path(self.models_path, row.folder)

    async def load(self, folder: str | Path) -> Classifier:
        """Load a model folder on this device, in a thread."""
        return await asyncio.to_thread(load_model, folder, self.device)

    async def swap(self, classifier: Classifier, version: str) -> None:
        """Serve `classifier` as `version` (requests in flight finish on the old model), then
        re-score the queue. Nothing to do without a predictor (the CLI)."""
        if self.predictor is None:
            return
        self.predictor.swap(classifier, version)
        try:
            n = await self.rescore_queue(version)
            log.info("re-scored %d unlabelled message(s) with %s", n, version)
        except Exception:
            log.warning("re-scoring the queue with %s failed", version, exc_info=True)

    async def rescore_queue(self, version: str, limit: int = RESCORE_LIMIT) -> int:
        """Score unlabelled messages that `version` has not scored yet; returns how many."""
        if self.predictor is None or self.predictor.version != version:
            return 0
        async with self.sessionmaker() as session:
            rows = await repo.unscored_messages(session, version, limit)
        # Chunk by chunk: the predictor runs one request as one batch, so scoring all rows at once
        # would hold every chat's reply behind it (tens of seconds with BERT); small units of work
        # likewise let the bot's own writes take the database lock in between.
        for start in range(0, len(rows), RESCORE_CHUNK):
            chunk = rows[start : start + RESCORE_CHUNK]
            predictions = await self.predictor.predict([text for _, text in chunk])
            async with self.sessionmaker.begin() as session:
                for (message_id, _), pred in zip(chunk, predictions, strict=True):
                    await repo.add_prediction(
                        session,
                        message_id,
                        model_version=pred.model_version,
                        label=pred.label,
                        confidence=pred.confidence,
                        probs=pred.probs,
                    )
        return len(rows)
