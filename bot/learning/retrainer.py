"""Retraining: triggers, the run's bookkeeping, training in the worker process, and promotion.

A run: record it (one `running` row is the cross-process lock), assemble the data
(`bot.learning.data`), take the active model's recipe (`bot.learning.recipe`), train and score
in `python -m bot.learning.worker SPEC` (`bot.learning.runner`), then let the gate decide
(`bot.learning.gate`); a promoted model is hot-swapped into the served model. A worker that
crashes or is killed leaves the active model untouched and the run recorded as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.learning import data as training_data
from bot.learning import recipe, runner
from bot.learning.data import LearningOptions
from bot.learning.errors import LearningError, TrainingInProgressError
from bot.learning.folders import stored_folder
from bot.learning.gate import GateDecision, decide
from bot.learning.resolution import LabelResolver
from bot.learning.results import LabelCount, Progress, ProgressCallback, RetrainOutcome
from bot.learning.review import record_checks
from bot.learning.served import ServedModel
from classifier.card import ModelCard, read_card
from classifier.model import Classifier
from storage import repositories as repo
from storage.errors import TrainingAlreadyRunningError

log = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = timedelta(hours=24)  # longest wait between scheduled tries after failures
# How an interrupted run is recorded (`training_runs.error`).
CANCELLED = "cancelled: the bot stopped during training"
SHUTTING_DOWN = "the bot is shutting down"
INTERRUPTED = "interrupted: the bot stopped during training"
ORPHANED = "interrupted: the process running it stopped before it finished"
DOES_NOT_LOAD = "the candidate folder does not load: {error}"  # a gate reason


class Retrainer:
    """Training runs: the schedule's and people's triggers, the worker, the gate, the hot swap.

    `lock` is the in-process training lock, shared with `ModelVersions` (a rollback holds it).
    """

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        served: ServedModel,
        lock: asyncio.Lock,
        options: LearningOptions,
        *,
        resolver: LabelResolver | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver or LabelResolver(sessionmaker, served, settings.annotators)
        self.sessionmaker = sessionmaker
        self.served = served
        self.lock = lock
        self.options = options
        # Leave a core to the bot: on 2 cores the worker trains on 1 thread.
        threads = options.worker_threads or max(1, (os.cpu_count() or 2) - 1)
        self.worker = runner.TrainingWorker(settings.data_dir, served.device, threads)
        self._closing = False

    @property
    def training(self) -> bool:
        """True while a run (or a rollback) of this process is in progress."""
        return self.lock.locked()

    @property
    def closing(self) -> bool:
        """True once `close()` was called (the bot is stopping)."""
        return self._closing

    @property
    def worker_pid(self) -> int | None:
        """The training worker's process id while one runs (tests kill it)."""
        return self.worker.pid

    async def close(self) -> None:
        """Stop a running worker (the run is recorded as failed) and wait for the bookkeeping."""
        self._closing = True
        self.worker.kill()
        if self.lock.locked():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    async with self.lock:
                        pass

    # --- triggers -----------------------------------------------------------------------------
    async def new_labels(self, trigger: str) -> LabelCount:
        """The one rule for "enough new labels?": resolved labels added or changed since the last
        successful run, against RETRAIN_MIN_NEW_LABELS for the schedule and one for a person
        (/retrain, `sentibot retrain`); `force` skips the check."""
        async with self.sessionmaker() as session:
            new = await repo.new_labels_since_last_run(session)
        scheduled = trigger == "schedule"
        return LabelCount(new, max(1, self.settings.retrain_min_new_labels) if scheduled else 1)

    async def retrain_if_due(self) -> RetrainOutcome | None:
        """The schedule's entry: a run when enough new labels exist and no back-off is due."""
        if self.training:
            return None
        retry_at = await self.scheduled_retry_at()
        if retry_at is not None and datetime.now(UTC) < retry_at:
            log.info("scheduled retrain skipped: backing off after failures until %s", retry_at)
            return None
        try:
            outcome = await self.retrain("schedule")
        except TrainingInProgressError:
            return None
        return None if outcome.status == "skipped" else outcome

    async def scheduled_retry_at(self) -> datetime | None:
        """When the schedule may try again after failed runs (None: no failure streak).

        A run that fails (bad data, a crashing worker, a full disk) would fail again at every
        tick and message the admins each time. After n failures in a row the schedule waits
        RETRAIN_INTERVAL_MINUTES × 2^(n-1) from the last failure, at most RETRY_BACKOFF_MAX
        (or one interval, if longer). A successful run, an admin's /retrain or `sentibot
        retrain` included, ends the streak.
        """
        async with self.sessionmaker() as session:
            failures, last = await repo.recent_failures(session)
        if failures == 0 or last is None:
            return None
        interval = timedelta(minutes=float(self.settings.retrain_interval_minutes))
        wait = min(interval * 2 ** min(failures - 1, 16), max(RETRY_BACKOFF_MAX, interval))
        return last + wait

    async def retrain(
        self,
        trigger: str,
        who: int | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        force: bool = False,
        backbone: str | None = None,
    ) -> RetrainOutcome:
        """Run one training run end to end and return its outcome.

        Without `force`, a run needs enough new labels (`new_labels`), else the outcome is
        `skipped`. Raises `TrainingInProgressError` when a run is in progress (here or in
        another process). Worker failures come back as a `failed` outcome.
        """
        if self.lock.locked():
            raise TrainingInProgressError()
        async with self.lock:
            started = time.perf_counter()
            outcome = await self._retrain(trigger, who, on_progress, force, backbone)
            outcome.seconds = time.perf_counter() - started
            log.info("training run %s: %s %s", outcome.run_id, outcome.status, outcome.message)
            return outcome

    async def _retrain(
        self,
        trigger: str,
        who: int | None,
        on_progress: ProgressCallback | None,
        force: bool,
        backbone: str | None,
    ) -> RetrainOutcome:
        count = await self.new_labels(trigger)
        outcome = RetrainOutcome("skipped", trigger, new_labels=count.new)
        outcome.needed_labels = count.needed
        outcome.user_label_weight = self.options.user_label_weight
        if not force and not count.enough:
            return outcome
        outcome.run_id, active = await self._start_run(trigger, who, force, count.new)
        outcome.status = "running"
        outcome.active_version = None if active is None else active.version
        try:
            await self._train_and_decide(outcome, active, who, on_progress, backbone)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail_run(outcome, CANCELLED))
            raise
        except LearningError as exc:  # worker crash or kill, bad data: expected failures
            log.warning("training run %s failed: %s", outcome.run_id, exc)
            await self._fail_run(outcome, str(exc))
        except Exception as exc:
            log.exception("training run %s failed", outcome.run_id)
            await self._fail_run(outcome, f"{type(exc).__name__}: {exc}")
        return outcome

    # --- the run's records --------------------------------------------------------------------
    async def _start_run(
        self, trigger: str, who: int | None, force: bool, new: int
    ) -> tuple[int, Any]:
        """Record the run (cross-process lock: one `running` row) and read the active version."""
        details = {"pid": os.getpid(), "force": force, "new_labels": new}
        async with self.sessionmaker.begin() as session:
            await _fail_dead_run(session)
            try:
                run = await repo.start_training_run(session, trigger, who, details=details)
            except TrainingAlreadyRunningError:
                raise TrainingInProgressError() from None
            active = await repo.get_active_model_version(session)
            if trigger in ("admin", "cli"):  # a person asked: audit it (CLI: who is None)
                await repo.add_audit(session, who, "retrain", {"run_id": run.id, "force": force})
            return run.id, active

    async def _fail_run(self, outcome: RetrainOutcome, error: str) -> None:
        outcome.status, outcome.message = "failed", error
        async with self.sessionmaker.begin() as session:
            await repo.finish_training_run(
                session,
                outcome.run_id,
                status="failed",
                error=error[:2000],
                candidate_version=outcome.candidate_version,
            )

    async def recover(self) -> int:
        """On start: runs left `running` by a process that no longer exists are marked failed.

        A run recorded with this process's own id is dead too when this service runs none: a
        restarted container's bot often gets the same pid (1) as the one that died.
        """
        async with self.sessionmaker.begin() as session:
            return await _fail_dead_run(session, own_pid_is_dead=not self.training)

    async def _emit(self, on_progress: ProgressCallback | None, progress: Progress) -> None:
        """Tell the caller; a failing callback (e.g. a failed edit) never stops the training."""
        if on_progress is None:
            return
        try:
            pending = on_progress(progress)
            if inspect.isawaitable(pending):
                await pending
        except Exception:
            log.warning("progress callback failed", exc_info=True)

    # --- train, then decide -------------------------------------------------------------------
    async def _train_and_decide(
        self,
        outcome: RetrainOutcome,
        active: Any,
        who: int | None,
        on_progress: ProgressCallback | None,
        backbone: str | None,
    ) -> None:
        version, folder = await recipe.next_version(self.sessionmaker, self.settings.models_path)
        outcome.candidate_version = version
        await self._emit(on_progress, Progress("preparing", version))
        labels = await recipe.label_list(self.served, active)
        resolved = await self.resolver.resolve()  # labels weighed by each labeller's reliability
        data = await training_data.collect(
            self.sessionmaker, self.options, labels, examples=resolved.examples
        )
        outcome.train_rows, outcome.user_rows = len(data.train), data.user_rows
        outcome.eval_rows = len(data.eval)
        overrides = self.options.train_overrides
        config = await recipe.train_config(active, backbone, self.settings, overrides)
        card = {
            "version": version,
            "parent": outcome.active_version,
            "trigger": outcome.trigger,
            "requested_by": who,
            "run_id": outcome.run_id,
            "manifest": data.manifest,
        }
        if self._closing:
            raise LearningError(SHUTTING_DOWN)

        async def on_event(event: dict[str, Any]) -> None:
            progress = runner.progress_of(event, version)
            if progress is not None:
                await self._emit(on_progress, progress)

        try:
            result = await self.worker.run(
                outcome.run_id,
                data,
                on_event,
                labels=labels,
                folder=folder,
                config=config,
                active=None if active is None else self.served.folder(active),
                card=card,
                feature_cache=str(self.settings.feature_cache_path),
                review_folds=self.options.review_folds,
                learning_curve=self.options.learning_curve,
            )
        except runner.WorkerFailed as exc:
            raise LearningError(INTERRUPTED if self._closing else str(exc)) from None
        await self._emit(on_progress, Progress("deciding", version))
        await self._decide(outcome, result, folder, config.get("backbone", "embedding"))
        await record_checks(self.sessionmaker, outcome, result, resolved)

    async def _decide(
        self, outcome: RetrainOutcome, result: dict[str, Any], folder: Path, backbone: str
    ) -> None:
        """Gate, register, and hot-swap a promoted candidate into the running bot."""
        outcome.candidate_report, outcome.active_report = result["candidate"], result["active"]
        gate = decide(
            result["candidate"],
            result["active"],
            tolerance=self.settings.promotion_tolerance,
            max_recall_drop=self.settings.promotion_max_recall_drop,
        )
        card = await asyncio.to_thread(read_card, folder)
        # Loaded even without a predictor (the CLI): a folder that fails never becomes active.
        classifier: Classifier | None = None
        if gate.promote:
            try:
                classifier = await self.served.load(folder)
            except Exception as exc:
                reasons = [DOES_NOT_LOAD.format(error=exc)]
                gate = GateDecision(False, reasons, gate.candidate_macro_f1, gate.active_macro_f1)
        outcome.gate, outcome.status, outcome.message = gate, gate.decision, gate.reason
        async with self.sessionmaker.begin() as session:
            stored = stored_folder(self.settings.models_path, folder)
            await _record_decision(session, outcome, card, stored, backbone)
        # Swap right after the commit: requests in flight finish on the old model.
        if classifier is not None:
            await self.served.swap(classifier, outcome.candidate_version)


async def _record_decision(
    session: AsyncSession,
    outcome: RetrainOutcome,
    card: ModelCard,
    stored: str,
    backbone: str,
) -> None:
    """Register the candidate (active, or rejected with the reason) and finish the run."""
    gate, version = outcome.gate, outcome.candidate_version
    await repo.register_model_version(
        session,
        version,
        folder=stored,
        backbone=backbone,
        metrics=card.summary_metrics(),
        manifest=card.summary_manifest(),
        parent_version=outcome.active_version,
    )
    if gate.promote:
        await repo.activate_model_version(session, version, reason=gate.reason)
    else:
        await repo.set_model_status(session, version, "rejected", reason=gate.reason)
    await repo.finish_training_run(
        session,
        outcome.run_id,
        status="succeeded",
        candidate_version=version,
        decision=gate.decision,
        reason=gate.reason,
        details={
            "train_rows": outcome.train_rows,
            "user_rows": outcome.user_rows,
            "eval_rows": outcome.eval_rows,
            "new_labels": outcome.new_labels,
            "candidate_macro_f1": gate.candidate_macro_f1,
            "active_macro_f1": gate.active_macro_f1,
        },
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _fail_dead_run(session: AsyncSession, *, own_pid_is_dead: bool = False) -> int:
    """A `running` run whose owning process is gone (crash, kill -9) is marked failed."""
    run = await repo.running_training_run(session)
    if run is None:
        return 0
    pid = (run.details or {}).get("pid")
    mine = own_pid_is_dead and pid == os.getpid()
    if isinstance(pid, int) and not mine and _pid_alive(pid):
        return 0
    await repo.finish_training_run(session, run.id, status="failed", error=ORPHANED)
    return 1
