"""The learning loop: labeling queue, retraining in a worker process, promotion gate, hot swap,
model versions and rollback.

`LearningService` is shared by the Telegram handlers, the scheduled job and `sentibot retrain`;
it never imports `telegram`. Everything it decides is recorded: `training_runs` (trigger, who,
status, error, candidate, decision, reason), `model_versions` (candidate → active / rejected,
retired on replacement) and `audit_log` (admin retrains and rollbacks).

How a retrain works (docs/learning.md has the long version):

1. Data: the bootstrap corpus (its own row weights, about 1 each) plus every resolved label's
   `train` split (weight `USER_LABEL_WEIGHT`). Evaluation: the fixed `eval` split of resolved
   labels, plus a fixed slice of the bootstrap corpus while fewer than `EVAL_MIN_USER_ROWS` user
   labels are in it.
2. `python -m bot.training_worker SPEC` trains the candidate (same backbone and settings as the
   active model), scores candidate and active model on the same eval rows, and writes the
   candidate folder atomically. Its epochs arrive as progress events.
3. `bot.gate.decide` promotes or rejects; a promoted model is hot-swapped into the `Predictor`.

The package's modules:

- `core`: the shared state (settings, database, predictor, data sources, training lock)
- `labeling`: the /label queue and the annotators' agreement for /status
- `retraining`: triggers, run records, the worker run, the decision and hot swap
- `data`, `recipe`, `runner`, `promotion`, `rescore`: the steps `retraining` is made of
- `versions`: /models, rollback, following the database's active model
- `errors`, `results`: what callers catch and get back

Everything callers use is importable from `bot.learning` itself.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.learning.data import (
    EVAL_MIN_USER_ROWS,
    USER_LABEL_WEIGHT,
    Corpus,
    CorpusProvider,
    default_base_corpus,
    default_dev_slice,
    default_eval_slice,
)
from bot.learning.data import unpack as _unpack
from bot.learning.errors import (
    IN_PROGRESS,
    LearningError,
    RollbackError,
    TrainingInProgressError,
)
from bot.learning.labeling import LabelingQueue
from bot.learning.recipe import postprocessed as _postprocessed
from bot.learning.rescore import RESCORE_CHUNK, RESCORE_LIMIT
from bot.learning.results import (
    AnnotatorReport,
    ModelInfo,
    Progress,
    ProgressCallback,
    QueueView,
    RetrainOutcome,
    RollbackOutcome,
    report_comparison,
)
from bot.learning.retraining import Retraining
from bot.learning.versions import ModelVersions

__all__ = [
    "DEFAULT_OPTIONS",
    "EVAL_MIN_USER_ROWS",
    "IN_PROGRESS",
    "RESCORE_CHUNK",
    "RESCORE_LIMIT",
    "USER_LABEL_WEIGHT",
    "AnnotatorReport",
    "Corpus",
    "CorpusProvider",
    "LearningError",
    "LearningService",
    "ModelInfo",
    "Progress",
    "ProgressCallback",
    "QueueView",
    "RetrainOutcome",
    "RollbackError",
    "RollbackOutcome",
    "TrainingInProgressError",
    # private names of the old single module, still imported by benchmarks/active_learning.py
    "_postprocessed",
    "_unpack",
    "attach_learning",
    "default_base_corpus",
    "default_dev_slice",
    "default_eval_slice",
    "report_comparison",
]

log = logging.getLogger(__name__)


class LearningService(LabelingQueue, Retraining, ModelVersions):
    """Labeling queue, retraining, promotion, versions and rollback over one database.

    `LearningService(settings, sessionmaker, predictor=None, *, device=None, base_corpus=None,
    eval_slice=None, dev_slice=None, train_overrides=None, user_label_weight=USER_LABEL_WEIGHT,
    eval_min_user_rows=EVAL_MIN_USER_ROWS, worker_threads=None)`.

    `predictor` is the running bot's `Predictor` (hot-swapped on promotion); None in the CLI,
    where the database records the new active model and a running bot picks it up
    (`sync_active_model`). `base_corpus` / `eval_slice` / `dev_slice` default to the bootstrap
    corpus and its held-out slices; tests pass tiny ones. `train_overrides` are `TrainRecipe`
    fields applied over the active model's own training config (tests use few epochs).
    """


# --- wiring into the running bot ------------------------------------------------------------------
# Keyword arguments for the `LearningService` that `attach_learning` builds when none are given.
# Empty in production; the end-to-end tests put a tiny corpus and few epochs here.
DEFAULT_OPTIONS: dict[str, Any] = {}


async def attach_learning(runtime: Any, **options: Any) -> LearningService:
    """Build the learning loop for a `bot.runtime.Runtime` and plug it in.

    Sets `runtime.learning`, stops the worker on `runtime.close()`, adds the learning section to
    /status, and marks runs left `running` by a dead process as failed.
    """
    service = LearningService(
        runtime.settings,
        runtime.sessionmaker,
        runtime.predictor,
        device=runtime.device,
        **(options or DEFAULT_OPTIONS),
    )
    recovered = await service.recover()
    if recovered:
        log.warning("marked %d interrupted training run(s) as failed", recovered)
    runtime.learning = service
    runtime.on_close.append(service.close)
    providers = getattr(runtime.service, "status_providers", None)
    if providers is not None:
        providers.append(service.status_section)
    return service
