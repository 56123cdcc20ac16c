"""The state every part of the learning loop shares: settings, database, the running bot's
`Predictor`, the data sources, and the in-process training lock.

`LearningCore` is the base of the parts `LearningService` is made of (`bot.learning.labeling`,
`bot.learning.retraining`, `bot.learning.versions`); it also holds what more than one part
needs: the labels, the active version, the training data, re-scoring after a model change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from bot.learning import data as training_data
from bot.learning.data import (
    EVAL_MIN_USER_ROWS,
    USER_LABEL_WEIGHT,
    CorpusProvider,
    Dataset,
    default_base_corpus,
    default_dev_slice,
    default_eval_slice,
)
from bot.learning.rescore import RESCORE_LIMIT, rescore_unlabelled

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.config import Settings
    from classifier.predictor import Predictor

log = logging.getLogger(__name__)


class LearningCore:
    """Shared state of the learning loop (see `bot.learning.LearningService` for the parameters)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        predictor: Predictor | None = None,
        *,
        device: str | None = None,
        base_corpus: CorpusProvider | None = None,
        eval_slice: CorpusProvider | None = None,
        dev_slice: CorpusProvider | None = None,
        train_overrides: dict[str, Any] | None = None,
        user_label_weight: float = USER_LABEL_WEIGHT,
        eval_min_user_rows: int = EVAL_MIN_USER_ROWS,
        worker_threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.predictor = predictor
        self.device = device or "cpu"
        self.base_corpus = base_corpus or default_base_corpus
        self.eval_slice = eval_slice or default_eval_slice
        # With the default corpus, early stopping uses the bootstrap build's own dev slice, so
        # a retrain without new labels reproduces the bootstrap recipe; with a corpus of your
        # own (tests), `train` carves a dev split from the training rows.
        self.dev_slice = dev_slice or (default_dev_slice if base_corpus is None else None)
        self.train_overrides = dict(train_overrides or {})
        self.user_label_weight = user_label_weight
        self.eval_min_user_rows = eval_min_user_rows
        # Leave a core to the bot: on 2 cores the worker trains on 1 thread.
        self.worker_threads = worker_threads or max(1, (os.cpu_count() or 2) - 1)
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._closing = False

    # --- state --------------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """True while a run of this process is in progress."""
        return self._lock.locked()

    @property
    def closing(self) -> bool:
        """True once `close()` was called (the bot is stopping)."""
        return self._closing

    @property
    def worker_pid(self) -> int | None:
        """The training worker's process id while one runs (tests kill it)."""
        proc = self._proc
        return None if proc is None or proc.returncode is not None else proc.pid

    @property
    def labels(self) -> list[str]:
        if self.predictor is not None:
            return list(self.predictor.classifier.labels)
        from bot.config import DEFAULT_LABELS

        return list(DEFAULT_LABELS)

    async def close(self) -> None:
        """Stop a running worker (the run is recorded as failed) and wait for the bookkeeping."""
        self._closing = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self._lock.locked():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    async with self._lock:
                        pass

    async def _active_version(self, session: AsyncSession) -> str | None:
        from storage import repositories as repo

        if self.predictor is not None:
            return self.predictor.version
        active = await repo.get_active_model_version(session)
        return None if active is None else active.version

    # --- data ---------------------------------------------------------------------------------
    async def _collect(self, labels: list[str], *, with_train: bool = True) -> Dataset:
        """Training and evaluation rows, and the data manifest for the model card.

        `with_train=False` (a rollback's check) skips loading the bootstrap corpus.
        """
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            examples = await repo.labelled_examples(session)
        base = (
            await asyncio.to_thread(training_data.base_rows, self.base_corpus, labels)
            if with_train
            else []
        )
        data = await asyncio.to_thread(self._assemble, examples, base, labels, with_train)
        if with_train and self.dev_slice is not None:
            data.dev = await asyncio.to_thread(training_data.slice_rows, self.dev_slice, labels)
            data.manifest["dev"] = {"rows": len(data.dev), "source": "bootstrap dev slice"}
        return data

    def _assemble(
        self, examples: list[Any], base: list[dict[str, Any]], labels: list[str], with_train: bool
    ) -> Dataset:
        return training_data.assemble(
            examples,
            base,
            labels,
            with_train=with_train,
            eval_slice=self.eval_slice,
            user_label_weight=self.user_label_weight,
            eval_min_user_rows=self.eval_min_user_rows,
        )

    # --- keeping the queue in step with the model ---------------------------------------------
    async def rescore_queue(self, version: str, limit: int = RESCORE_LIMIT) -> int:
        """Score unlabelled messages that have no prediction by `version` yet (newest first), so
        the /label queue stays in uncertainty order after a model change."""
        if self.predictor is None or self.predictor.version != version:
            return 0
        return await rescore_unlabelled(self.sessionmaker, self.predictor, version, limit)

    async def _rescore_quietly(self, version: str) -> None:
        try:
            n = await self.rescore_queue(version)
            log.info("re-scored %d unlabelled message(s) with %s", n, version)
        except Exception:
            log.warning("re-scoring the queue with %s failed", version, exc_info=True)
