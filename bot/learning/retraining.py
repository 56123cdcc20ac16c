"""Retraining: triggers, the run's bookkeeping, training in the worker process, and promotion.

A run: record it (one `running` row is the cross-process lock), assemble the data
(`bot.learning.data`), take the active model's recipe (`bot.learning.recipe`), train and score
in `python -m bot.training_worker SPEC` (`bot.learning.runner`), then let the gate decide
(`bot.learning.promotion`); a promoted model is hot-swapped into the `Predictor`. A worker that
crashes or is killed leaves the active model untouched and the run recorded as failed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.learning import promotion, recipe, runner
from bot.learning.core import LearningCore
from bot.learning.data import Dataset
from bot.learning.errors import LearningError, TrainingInProgressError
from bot.learning.results import Progress, ProgressCallback, RetrainOutcome

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = timedelta(hours=24)  # longest wait between scheduled tries after failures


class Retraining(LearningCore):
    """The retraining part of `LearningService`."""

    # --- triggers -----------------------------------------------------------------------------
    async def new_label_count(self) -> int:
        """Resolved labels added or changed since the last successful run."""
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            return await repo.new_labels_since_last_run(session)

    async def retrain_if_due(self) -> RetrainOutcome | None:
        """The schedule's entry: retrain when ≥ RETRAIN_MIN_NEW_LABELS new labels exist."""
        if self.training:
            return None
        new = await self.new_label_count()
        minimum = max(1, self.settings.retrain_min_new_labels)
        if new < minimum:
            log.info("scheduled retrain skipped: %d new label(s), %d needed", new, minimum)
            return None
        retry_at = await self.scheduled_retry_at()
        if retry_at is not None and datetime.now(UTC) < retry_at:
            log.info("scheduled retrain skipped: backing off after failures until %s", retry_at)
            return None
        try:
            return await self.retrain("schedule", None, min_new_labels=minimum)
        except TrainingInProgressError:
            return None

    async def scheduled_retry_at(self) -> datetime | None:
        """When the schedule may try again after failed runs (None: no failure streak).

        A run that fails (bad data, a crashing worker, a full disk) would fail again at every
        tick and message the admins each time. After n failures in a row the schedule waits
        RETRAIN_INTERVAL_MINUTES × 2^(n-1) from the last failure, at most RETRY_BACKOFF_MAX
        (or one interval, if longer). A successful run, an admin's /retrain or `sentibot
        retrain` included, ends the streak.
        """
        from storage import repositories as repo

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
        min_new_labels: int = 1,
        backbone: str | None = None,
    ) -> RetrainOutcome:
        """Run one training run end to end and return its outcome.

        Without `force`, at least `min_new_labels` new resolved labels are needed (else the
        outcome is `skipped`). Raises `TrainingInProgressError` when a run is in progress
        (here or in another process). Worker failures come back as a `failed` outcome.
        """
        if self._lock.locked():
            raise TrainingInProgressError()
        async with self._lock:
            started = time.perf_counter()
            outcome = await self._retrain(
                trigger, who, on_progress, force, min_new_labels, backbone
            )
            outcome.seconds = time.perf_counter() - started
            log.info("training run %s: %s %s", outcome.run_id, outcome.status, outcome.message)
            return outcome

    async def _retrain(
        self,
        trigger: str,
        who: int | None,
        on_progress: ProgressCallback | None,
        force: bool,
        min_new_labels: int,
        backbone: str | None,
    ) -> RetrainOutcome:
        new = await self.new_label_count()
        if not force and new < max(1, min_new_labels):
            return RetrainOutcome(
                "skipped",
                trigger,
                message=f"Only {new} new label(s) since the last training run "
                f"({max(1, min_new_labels)} needed); force a run to train anyway "
                "(/retrain force, sentibot retrain --force).",
                new_labels=new,
            )
        run_id, active = await self._start_run(trigger, who, force, new)
        outcome = RetrainOutcome("running", trigger, run_id=run_id, new_labels=new)
        outcome.active_version = None if active is None else active.version
        try:
            await self._train_and_decide(outcome, active, who, on_progress, backbone)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._fail_run(outcome, "cancelled: the bot stopped during training")
            )
            raise
        except LearningError as exc:  # worker crash or kill, bad data: expected failures
            log.warning("training run %s failed: %s", run_id, exc)
            await self._fail_run(outcome, str(exc))
        except Exception as exc:
            log.exception("training run %s failed", run_id)
            await self._fail_run(outcome, f"{type(exc).__name__}: {exc}")
        return outcome

    # --- the run's records --------------------------------------------------------------------
    async def _start_run(self, trigger: str, who: int | None, force: bool, new: int):
        """Record the run (cross-process lock: one `running` row) and read the active version."""
        from storage import repositories as repo
        from storage.errors import TrainingAlreadyRunningError

        async with self.sessionmaker.begin() as session:
            await _fail_dead_run(session)
            try:
                run = await repo.start_training_run(session, trigger, who)
            except TrainingAlreadyRunningError:
                raise TrainingInProgressError() from None
            run.details = {"pid": os.getpid(), "force": force, "new_labels": new}
            active = await repo.get_active_model_version(session)
            if trigger in ("admin", "cli"):  # a person asked: audit it (CLI: who is None)
                await repo.add_audit(session, who, "retrain", {"run_id": run.id, "force": force})
            return run.id, active

    async def _fail_run(self, outcome: RetrainOutcome, error: str) -> None:
        from storage import repositories as repo

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
            pending = _maybe_await(on_progress(progress))
            if pending is not None:
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
        labels = await recipe.label_list(self.predictor, active, self.labels)
        data = await self._collect(labels)
        outcome.train_rows, outcome.user_rows = len(data.train), data.user_rows
        outcome.eval_rows = len(data.eval)
        config = await recipe.train_config(active, backbone, self.settings, self.train_overrides)
        card = {
            "version": version,
            "parent": outcome.active_version,
            "trigger": outcome.trigger,
            "requested_by": who,
            "run_id": outcome.run_id,
            "manifest": data.manifest,
        }
        result = await self._run_worker(
            outcome.run_id, version, folder, labels, config, active, card, data, on_progress
        )
        await self._emit(on_progress, Progress("deciding", version))
        await self._decide(outcome, result, folder, config.get("backbone", "embedding"))

    async def _run_worker(
        self,
        run_id: int,
        version: str,
        folder: Path,
        labels: list[str],
        config: dict[str, Any],
        active: Any,
        card: dict[str, Any],
        data: Dataset,
        on_progress: ProgressCallback | None,
    ) -> dict[str, Any]:
        """Run the worker to completion; returns its `done` event or raises `LearningError`."""
        workdir = self.settings.data_dir / "training" / f"run-{run_id:05d}"
        spec_path = await runner.write_spec(
            workdir,
            data,
            labels=labels,
            folder=folder,
            config=config,
            active=active,
            card=card,
            device=self.device,
            threads=self.worker_threads,
            feature_cache=str(self.settings.feature_cache_path),
        )
        try:
            done = await self._spawn(spec_path, workdir / "worker.log", version, on_progress)
        except BaseException:
            runner.cleanup(workdir, keep_log=True)
            raise
        runner.cleanup(workdir, keep_log=False)
        return done

    async def _spawn(
        self, spec_path: Path, log_path: Path, version: str, on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        from bot.training_worker import WorkerFailed, run_worker

        if self._closing:
            raise LearningError("the bot is shutting down")

        async def on_event(event: dict[str, Any]) -> None:
            progress = runner.progress_of(event, version)
            if progress is not None:
                await self._emit(on_progress, progress)

        def track(proc: asyncio.subprocess.Process | None) -> None:
            self._proc = proc

        try:
            return await run_worker(spec_path, log_path, on_event, track)
        except WorkerFailed as exc:
            if self._closing:
                raise LearningError("interrupted: the bot stopped during training") from None
            raise LearningError(str(exc)) from None

    async def _decide(
        self, outcome: RetrainOutcome, result: dict[str, Any], folder: Path, backbone: str
    ) -> None:
        """Gate, register, and hot-swap a promoted candidate into the running bot."""
        from classifier.card import read_card

        outcome.candidate_report, outcome.active_report = result["candidate"], result["active"]
        outcome.gate = gate = promotion.judge(result, self.settings)
        card = await asyncio.to_thread(read_card, folder)
        gate, classifier = await promotion.load_candidate(gate, folder, self.device)
        outcome.gate = gate
        async with self.sessionmaker.begin() as session:
            await promotion.record_decision(session, outcome, gate, card, folder, backbone)
        # Swap right after the commit: requests in flight finish on the old model.
        if gate.promote and classifier is not None and self.predictor is not None:
            self.predictor.swap(classifier, outcome.candidate_version)
        outcome.status = gate.decision
        outcome.message = gate.reason
        if gate.promote:
            await self._rescore_quietly(outcome.candidate_version)


def _maybe_await(result: Awaitable[None] | None) -> Awaitable[None] | None:
    return result if inspect.isawaitable(result) else None


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
    from storage import repositories as repo

    run = await repo.running_training_run(session)
    if run is None:
        return 0
    pid = (run.details or {}).get("pid")
    mine = own_pid_is_dead and pid == os.getpid()
    if isinstance(pid, int) and not mine and _pid_alive(pid):
        return 0
    await repo.finish_training_run(
        session,
        run.id,
        status="failed",
        error="interrupted: the process running it stopped before it finished",
    )
    return 1
