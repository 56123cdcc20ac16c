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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.agreement import PairAgreement, pairwise_agreement
from bot.gate import GateDecision, decide

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.config import Settings
    from classifier.predictor import Predictor

log = logging.getLogger(__name__)

# A resolved label from the product's own people counts this many times in the training loss
# (a bootstrap corpus row averages 1): 100 user labels weigh like 2,000 corpus tweets, about 5%
# of the corpus. Their labels are in-domain, the corpus is not (docs/learning.md);
# `benchmarks/active_learning.py --weight W` measures other choices.
USER_LABEL_WEIGHT = 20.0
# While the eval split holds fewer user labels than this, a fixed bootstrap slice is added to it,
# so the gate does not decide on a handful of examples.
EVAL_MIN_USER_ROWS = 200
# After a promotion or rollback, unlabelled messages are re-scored by the new model (up to this
# many, newest first) so the /label queue keeps its uncertainty order.
RESCORE_LIMIT = 5000
RESCORE_CHUNK = 200

IN_PROGRESS = "a training run is already in progress"

Corpus = tuple[Sequence[str], Sequence[str]] | tuple[Sequence[str], Sequence[str], Sequence[float]]
CorpusProvider = Callable[[], Corpus]
ProgressCallback = Callable[["Progress"], Awaitable[None] | None]


class LearningError(Exception):
    """A request the learning loop refuses; the message is meant for the person who asked."""


class TrainingInProgressError(LearningError):
    def __init__(self, message: str = IN_PROGRESS) -> None:
        super().__init__(message)


class RollbackError(LearningError):
    """A rollback that was refused (unknown version, folder that does not load or score…)."""


# --- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """One step of a training run, for the admin's progress message."""

    stage: str  # preparing | training | evaluating | deciding
    version: str | None = None
    epoch: int = 0
    epochs: int = 0
    dev_macro_f1: float | None = None
    train_rows: int | None = None

    def text(self) -> str:
        name = self.version or "the candidate"
        if self.stage == "preparing":
            return f"Preparing the training data for {name}…"
        if self.stage == "training" and self.epoch == 0:
            rows = f" on {self.train_rows:,} rows" if self.train_rows else ""
            return f"Training {name}{rows}: starting…"
        if self.stage == "training":
            f1 = "" if self.dev_macro_f1 is None else f", dev macro-F1 {self.dev_macro_f1:.3f}"
            return f"Training {name}: epoch {self.epoch}/{self.epochs} done{f1}"
        if self.stage == "evaluating":
            return f"Evaluating {name} and the active model on the eval split…"
        return f"Deciding whether to promote {name}…"


@dataclass
class RetrainOutcome:
    """What a retrain request ended as: `skipped`, `failed`, `promoted` or `rejected`."""

    status: str
    trigger: str
    message: str = ""
    run_id: int | None = None
    active_version: str | None = None  # the active model the candidate was compared with
    candidate_version: str | None = None
    candidate_report: dict[str, Any] | None = None
    active_report: dict[str, Any] | None = None
    gate: GateDecision | None = None
    new_labels: int = 0
    train_rows: int = 0
    user_rows: int = 0
    eval_rows: int = 0
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def summary_lines(self) -> list[str]:
        """The report as plain lines (the handlers and the CLI format them)."""
        if self.status == "skipped":
            return [self.message]
        if self.status == "failed":
            return [
                f"Training run {self.run_id} failed: {self.message}",
                f"The active model {self.active_version} is unchanged.",
            ]
        lines = [
            f"Candidate {self.candidate_version} {self.status}"
            + (" (now active)" if self.promoted else f"; {self.active_version} stays active"),
            f"Trained on {self.train_rows:,} rows ({self.user_rows:,} from your labels, "
            f"weight ×{USER_LABEL_WEIGHT:g}); evaluated on {self.eval_rows:,} rows.",
        ]
        lines += report_comparison(self.candidate_report, self.active_report, self.active_version)
        if self.gate is not None:
            lines.append("Why: " + self.gate.reason)
        return lines


def report_comparison(
    candidate: dict[str, Any] | None, active: dict[str, Any] | None, active_version: str | None
) -> list[str]:
    """macro-F1 of both models, then recall per class (active → candidate)."""
    if candidate is None:
        return []
    if active is None:
        lines = [f"macro-F1: candidate {candidate['macro_f1']:.3f}"]
    else:
        lines = [
            f"macro-F1: candidate {candidate['macro_f1']:.3f} vs "
            f"{active_version or 'active'} {active['macro_f1']:.3f}"
        ]
    for label, stats in (candidate.get("per_class") or {}).items():
        if not int(stats.get("support", 0)):
            continue
        before = ((active or {}).get("per_class") or {}).get(label, {}).get("recall")
        was = "" if before is None else f"{before:.3f} → "
        lines.append(f"recall {label}: {was}{stats['recall']:.3f} (n={stats['support']})")
    return lines


@dataclass(frozen=True)
class ModelInfo:
    """One row of /models."""

    version: str
    created_at: datetime | None
    status: str
    backbone: str
    train_rows: int | None
    eval_macro_f1: float | None
    parent_version: str | None
    reason: str | None


@dataclass(frozen=True)
class RollbackOutcome:
    from_version: str | None
    to_version: str
    macro_f1: float
    eval_rows: int


@dataclass(frozen=True)
class QueueView:
    """What the /label message shows: an item (None: queue empty) and how many are left."""

    item: Any  # storage.repositories.QueueItem | None
    remaining: int
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnnotatorReport:
    counts: dict[int, int]
    pairs: list[PairAgreement]


@dataclass
class _Dataset:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    manifest: dict[str, Any]
    user_rows: int
    dev: list[dict[str, Any]] = field(default_factory=list)


# --- corpus providers ---------------------------------------------------------------------------
def default_base_corpus() -> Corpus:
    """The bootstrap corpus the first model was trained on, without its dev and eval slices."""
    from classifier.bootstrap import load_bootstrap_corpus

    return load_bootstrap_corpus(include_dev=False)


def default_dev_slice() -> Corpus:
    """The bootstrap build's dev slice: a retrain early-stops on the same rows it did."""
    from classifier.bootstrap import bootstrap_dev_slice

    return bootstrap_dev_slice()


def default_eval_slice() -> Corpus:
    """The fixed slice of the bootstrap corpus held out for evaluation."""
    from classifier.bootstrap import bootstrap_eval_slice

    return bootstrap_eval_slice()


def _unpack(corpus: Any) -> tuple[list[str], list[str], list[float] | None]:
    """Accept (texts, labels), (texts, labels, weights) or an object with those attributes."""
    if hasattr(corpus, "texts"):
        weights = getattr(corpus, "weights", None)
        return list(corpus.texts), list(corpus.labels), None if weights is None else list(weights)
    texts, labels, *rest = corpus
    return list(texts), list(labels), (list(rest[0]) if rest and rest[0] is not None else None)


def _digest(rows: Sequence[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row["text"], row["label"]], ensure_ascii=False).encode())
    return h.hexdigest()


def _maybe_await(result: Awaitable[None] | None) -> Awaitable[None] | None:
    return result if inspect.isawaitable(result) else None


class LearningService:
    """Labeling queue, retraining, promotion, versions and rollback over one database.

    `predictor` is the running bot's `Predictor` (hot-swapped on promotion); None in the CLI,
    where the database records the new active model and a running bot picks it up
    (`sync_active_model`). `base_corpus` / `eval_slice` / `dev_slice` default to the bootstrap
    corpus and its held-out slices; tests pass tiny ones. `train_overrides` are `TrainConfig`
    fields applied over the active model's own training config (tests use few epochs).
    """

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

    # --- labeling queue -----------------------------------------------------------------------
    async def _active_version(self, session: AsyncSession) -> str | None:
        from storage import repositories as repo

        if self.predictor is not None:
            return self.predictor.version
        active = await repo.get_active_model_version(session)
        return None if active is None else active.version

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

        Raises `LearningError` for a label the model does not know or a message that is gone.
        """
        from storage import repositories as repo
        from storage.errors import NotFoundError

        if label not in self.labels:
            raise LearningError(f"unknown label {label!r}")
        try:
            async with self.sessionmaker.begin() as session:
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

    async def annotators(self) -> AnnotatorReport:
        """Labels per person and pairwise Cohen's kappa on items labelled by both."""
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            counts = await repo.annotator_counts(session)
            pairs = await repo.annotator_pairs(session)
        by_person: dict[int, dict[int, str]] = defaultdict(dict)
        for pair in pairs:
            by_person[pair.user_a][pair.message_id] = pair.label_a
            by_person[pair.user_b][pair.message_id] = pair.label_b
        return AnnotatorReport(counts, pairwise_agreement(by_person))

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
        by_person: dict[int, dict[int, str]] = defaultdict(dict)
        for pair in await repo.annotator_pairs(session):
            by_person[pair.user_a][pair.message_id] = pair.label_a
            by_person[pair.user_b][pair.message_id] = pair.label_b
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

    # --- versions -----------------------------------------------------------------------------
    async def list_models(self, limit: int | None = 20) -> list[ModelInfo]:
        """Model versions, newest first."""
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            rows = await repo.list_model_versions(session, limit=limit)
        return [_model_info(row) for row in rows]

    # --- retraining ---------------------------------------------------------------------------
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
        try:
            return await self.retrain("schedule", None, min_new_labels=minimum)
        except TrainingInProgressError:
            return None

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

    async def _train_and_decide(
        self,
        outcome: RetrainOutcome,
        active: Any,
        who: int | None,
        on_progress: ProgressCallback | None,
        backbone: str | None,
    ) -> None:
        version, folder = await self._next_version()
        outcome.candidate_version = version
        await self._emit(on_progress, Progress("preparing", version))
        labels = await self._label_list(active)
        data = await self._collect(labels)
        outcome.train_rows, outcome.user_rows = len(data.train), data.user_rows
        outcome.eval_rows = len(data.eval)
        config = await self._train_config(active, backbone)
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
        await self._decide(outcome, active, result, folder, config.get("backbone", "embedding"))

    async def _next_version(self) -> tuple[str, Path]:
        """The next free `vNNNN`, free both in the database and in MODEL_DIR."""
        from classifier.artifacts import next_version_dir
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            db_name = await repo.next_version_name(session)
        model_dir = self.settings.models_path
        model_dir.mkdir(parents=True, exist_ok=True)
        dir_name = next_version_dir(model_dir).name
        number = max(int(db_name[1:]), int(dir_name[1:]))
        while (model_dir / f"v{number:04d}").exists():
            number += 1
        return f"v{number:04d}", (model_dir / f"v{number:04d}").resolve()

    async def _label_list(self, active: Any) -> list[str]:
        if self.predictor is not None:
            return list(self.predictor.classifier.labels)
        if active is not None:
            from classifier.artifacts import read_config

            config = await asyncio.to_thread(read_config, active.folder)
            return list(config["labels"])
        return self.labels

    async def _train_config(self, active: Any, backbone: str | None) -> dict[str, Any]:
        """The active model's own training config (same backbone, same encoder), plus overrides.

        `backbone` (from `sentibot retrain --backbone`) switches backbone: then the recipe
        starts from `TrainConfig`'s defaults instead of the active model's.
        """
        from classifier.artifacts import read_config, read_metrics

        config: dict[str, Any] = {}
        model_config: dict[str, Any] = {}
        card: dict[str, Any] = {}
        if active is not None:
            with contextlib.suppress(Exception):
                card = await asyncio.to_thread(read_metrics, active.folder)
                config.update((card.get("manifest") or {}).get("train_config") or {})
            with contextlib.suppress(Exception):
                model_config = await asyncio.to_thread(read_config, active.folder)
        current = model_config.get("backbone") or config.get("backbone")
        current = current or (active.backbone if active is not None else "embedding")
        if backbone is not None and backbone != current:
            config, model_config, current = {}, {}, backbone
        config["backbone"] = current
        if current == "bert":
            args = model_config.get("args") or {}
            config["bert_path"] = (
                config.get("bert_path")
                or args.get("encoder_source")
                or _str_or_none(self.settings.bert_path)
            )
            config["bert_mode"] = (
                config.get("bert_mode") or args.get("mode") or self.settings.bert_mode
            )
        config.update(self.train_overrides)
        config.pop("device", None)
        config["lexicon_prior"] = _lexicon_prior(card) if current == "embedding" else None
        return config

    async def _collect(self, labels: list[str], *, with_train: bool = True) -> _Dataset:
        """Training and evaluation rows, and the data manifest for the model card.

        `with_train=False` (a rollback's check) skips loading the bootstrap corpus.
        """
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            examples = await repo.labelled_examples(session)
        base = await asyncio.to_thread(self._base_rows, labels) if with_train else []
        data = await asyncio.to_thread(self._assemble, examples, base, labels, with_train)
        if with_train and self.dev_slice is not None:
            texts, gold, _ = await asyncio.to_thread(lambda: _unpack(self.dev_slice()))
            known = set(labels)
            data.dev = [
                {"text": t, "label": y} for t, y in zip(texts, gold, strict=True) if y in known
            ]
            data.manifest["dev"] = {"rows": len(data.dev), "source": "bootstrap dev slice"}
        return data

    def _base_rows(self, labels: list[str]) -> list[dict[str, Any]]:
        """The bootstrap corpus as training rows (its own per-row weights and sources)."""
        corpus = self.base_corpus()
        texts, gold, weights = _unpack(corpus)
        sources = getattr(corpus, "sources", None) or ["bootstrap"] * len(texts)
        weights = weights or [1.0] * len(texts)
        known = set(labels)
        return [
            {"text": t, "label": y, "weight": float(w), "source": src}
            for t, y, w, src in zip(texts, gold, weights, sources, strict=True)
            if y in known
        ]

    def _assemble(
        self, examples: list[Any], base: list[dict[str, Any]], labels: list[str], with_train: bool
    ) -> _Dataset:
        known = set(labels)
        train = list(base)
        user_train, user_eval, ignored = [], [], 0
        for ex in examples:
            if ex.label not in known:
                ignored += 1
                continue
            source = ex.sources[0] if len(ex.sources) == 1 else "+".join(ex.sources)
            row = {"text": ex.text, "label": ex.label, "source": source}
            if ex.split == "train":
                user_train.append({**row, "weight": self.user_label_weight})
            else:
                user_eval.append(row)
        train += user_train
        eval_rows = list(user_eval)
        if len(user_eval) < self.eval_min_user_rows:
            s_texts, s_gold, _ = _unpack(self.eval_slice())
            eval_rows += [
                {"text": t, "label": y, "source": "bootstrap"}
                for t, y in zip(s_texts, s_gold, strict=True)
                if y in known
            ]
        if with_train and not train:
            raise LearningError("no training data: the bootstrap corpus and labels are empty")
        if not eval_rows:
            raise LearningError("no evaluation data: the eval split is empty")
        manifest = {
            "train": _counts(train),
            "eval": {**_counts(eval_rows), "sha256": _digest(eval_rows)},
            "user_label_weight": self.user_label_weight,
            "user_labels": {"train": len(user_train), "eval": len(user_eval), "ignored": ignored},
            "bootstrap_eval_slice": len(eval_rows) - len(user_eval),
        }
        return _Dataset(train, eval_rows, manifest, len(user_train))

    # --- the worker process -------------------------------------------------------------------
    async def _run_worker(
        self,
        run_id: int,
        version: str,
        folder: Path,
        labels: list[str],
        config: dict[str, Any],
        active: Any,
        card: dict[str, Any],
        data: _Dataset,
        on_progress: ProgressCallback | None,
    ) -> dict[str, Any]:
        """Run the worker to completion; returns its `done` event or raises `LearningError`."""
        from bot.training_worker import WorkerSpec, write_rows

        workdir = self.settings.data_dir / "training" / f"run-{run_id:05d}"
        workdir.mkdir(parents=True, exist_ok=True)
        spec = WorkerSpec(
            train_file=await asyncio.to_thread(write_rows, workdir / "train.jsonl", data.train),
            eval_file=await asyncio.to_thread(write_rows, workdir / "eval.jsonl", data.eval),
            dev_file=(
                await asyncio.to_thread(write_rows, workdir / "dev.jsonl", data.dev)
                if data.dev
                else None
            ),
            labels=labels,
            out_dir=str(folder),
            config={k: v for k, v in config.items() if k != "lexicon_prior"},
            lexicon_prior=config.get("lexicon_prior"),
            active_model=None if active is None else str(active.folder),
            card=card,
            device=self.device,
            threads=self.worker_threads,
        )
        spec_path = spec.write(workdir / "spec.json")
        log_path = workdir / "worker.log"
        try:
            done = await self._spawn(spec_path, log_path, version, on_progress)
        except BaseException:
            _cleanup(workdir, keep_log=True)
            raise
        _cleanup(workdir, keep_log=False)
        return done

    async def _spawn(
        self, spec_path: Path, log_path: Path, version: str, on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        from bot.training_worker import WorkerFailed, run_worker

        if self._closing:
            raise LearningError("the bot is shutting down")

        async def on_event(event: dict[str, Any]) -> None:
            progress = _progress_of(event, version)
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

    # --- decision and swap --------------------------------------------------------------------
    async def _decide(
        self,
        outcome: RetrainOutcome,
        active: Any,
        result: dict[str, Any],
        folder: Path,
        backbone: str,
    ) -> None:
        from classifier.artifacts import load_model, read_metrics
        from storage import repositories as repo

        outcome.candidate_report, outcome.active_report = result["candidate"], result["active"]
        gate = decide(
            result["candidate"],
            result["active"],
            tolerance=self.settings.promotion_tolerance,
            max_recall_drop=self.settings.promotion_max_recall_drop,
        )
        outcome.gate = gate
        card = await asyncio.to_thread(read_metrics, folder)
        classifier = None
        if gate.promote:  # loaded even without a predictor: a folder that fails never activates
            try:
                classifier = await asyncio.to_thread(load_model, folder, self.device)
            except Exception as exc:  # a candidate that does not load never becomes active
                reasons = [f"the candidate folder does not load: {exc}"]
                f1s = (gate.candidate_macro_f1, gate.active_macro_f1)
                gate = GateDecision(False, reasons, *f1s)
                outcome.gate = gate
        version = outcome.candidate_version
        async with self.sessionmaker.begin() as session:
            await repo.register_model_version(
                session,
                version,
                folder=str(folder),
                backbone=backbone,
                metrics=card.get("metrics"),
                manifest=card.get("manifest"),
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
        # Swap right after the commit: requests in flight finish on the old model.
        if gate.promote and classifier is not None and self.predictor is not None:
            self.predictor.swap(classifier, version)
        outcome.status = gate.decision
        outcome.message = gate.reason
        if gate.promote:
            await self._rescore_quietly(version)

    # --- rollback -----------------------------------------------------------------------------
    async def rollback(self, who: int | None, target: str | None = None) -> RollbackOutcome:
        """Make `target` (default: the previously active version) active again.

        The target is loaded and must score the current eval split before anything changes;
        otherwise `RollbackError` says why. Recorded in the audit log (who, from → to).
        """
        from storage import repositories as repo

        if self.training:
            raise RollbackError(f"{IN_PROGRESS}; try again when it has finished")
        async with self.sessionmaker() as session:
            active = await repo.get_active_model_version(session)
            row = await self._rollback_target(session, active, target)
        classifier, report, eval_rows = await self._check_loads_and_scores(row)
        async with self.sessionmaker.begin() as session:
            await repo.activate_model_version(session, row.version, reason=f"rollback by {who}")
            await repo.add_audit(
                session,
                who,
                "rollback",
                {"from": None if active is None else active.version, "to": row.version},
            )
        if self.predictor is not None:
            self.predictor.swap(classifier, row.version)
        await self._rescore_quietly(row.version)
        return RollbackOutcome(
            None if active is None else active.version, row.version, report["macro_f1"], eval_rows
        )

    async def _rollback_target(self, session: AsyncSession, active: Any, target: str | None):
        from storage import repositories as repo

        if target is None:
            rows = await repo.list_model_versions(session)
            previous = [r for r in rows if r.status == "retired" and r.activated_at is not None]
            if not previous:
                raise RollbackError("there is no previously active version to go back to")
            return max(previous, key=lambda r: r.activated_at)
        row = await repo.get_model_version(session, target)
        if row is None:
            raise RollbackError(f"there is no model version {target} (see /models)")
        if active is not None and row.version == active.version:
            raise RollbackError(f"{target} is already the active model")
        if row.status == "rejected":
            raise RollbackError(f"{target} was rejected by the promotion gate ({row.reason})")
        return row

    async def _check_loads_and_scores(self, row: Any):
        """Load the target folder and score the eval split with it (in a thread)."""
        from classifier.artifacts import load_model
        from classifier.metrics import evaluate

        try:
            classifier = await asyncio.to_thread(load_model, row.folder, self.device)
        except Exception as exc:
            raise RollbackError(f"{row.version} does not load: {exc}") from None
        data = await self._collect(list(classifier.labels), with_train=False)
        texts = [r["text"] for r in data.eval]
        gold = [r["label"] for r in data.eval]
        try:
            report = (await asyncio.to_thread(evaluate, classifier, texts, gold)).to_dict()
        except Exception as exc:
            raise RollbackError(f"{row.version} cannot score the eval split: {exc}") from None
        if not report.get("n") or report["macro_f1"] != report["macro_f1"]:  # NaN check
            raise RollbackError(f"{row.version} did not produce usable scores on the eval split")
        return classifier, report, len(texts)

    # --- keeping a running bot in step ----------------------------------------------------------
    async def sync_active_model(self) -> str | None:
        """Load the database's active version if it differs from the predictor's (a CLI retrain
        or rollback in another process). Returns the new version, or None."""
        from classifier.artifacts import load_model
        from storage import repositories as repo

        if self.predictor is None or self.training:
            return None
        async with self.sessionmaker() as session:
            active = await repo.get_active_model_version(session)
        if active is None or active.version == self.predictor.version:
            return None
        try:
            classifier = await asyncio.to_thread(load_model, active.folder, self.device)
        except Exception:
            log.exception(
                "active model %s does not load; keeping %s", active.version, self.predictor.version
            )
            return None
        self.predictor.swap(classifier, active.version)
        await self._rescore_quietly(active.version)
        return active.version

    async def recover(self) -> int:
        """On start: runs left `running` by a process that no longer exists are marked failed."""
        async with self.sessionmaker.begin() as session:
            return await _fail_dead_run(session)

    async def _rescore_quietly(self, version: str) -> None:
        try:
            n = await self.rescore_queue(version)
            log.info("re-scored %d unlabelled message(s) with %s", n, version)
        except Exception:
            log.warning("re-scoring the queue with %s failed", version, exc_info=True)

    async def rescore_queue(self, version: str, limit: int = RESCORE_LIMIT) -> int:
        """Score unlabelled messages that have no prediction by `version` yet (newest first), so
        the /label queue stays in uncertainty order after a model change."""
        from sqlalchemy import exists, select

        from storage import repositories as repo
        from storage.models import Label, Message, Prediction

        if self.predictor is None or self.predictor.version != version:
            return 0
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Message.id, Message.text)
                    .where(~exists().where(Label.message_id == Message.id))
                    .where(
                        ~exists().where(
                            Prediction.message_id == Message.id, Prediction.model_version == version
                        )
                    )
                    .order_by(Message.id.desc())
                    .limit(limit)
                )
            ).all()
        if not rows:
            return 0
        predictions = await self.predictor.predict([text for _, text in rows])
        scored = list(zip(rows, predictions, strict=True))
        # Small units of work: the bot's own writes wait for the database lock in between.
        for start in range(0, len(scored), RESCORE_CHUNK):
            async with self.sessionmaker.begin() as session:
                for (message_id, _), pred in scored[start : start + RESCORE_CHUNK]:
                    await repo.add_prediction(
                        session,
                        message_id,
                        model_version=pred.model_version,
                        label=pred.label,
                        confidence=pred.confidence,
                        probs=pred.probs,
                    )
        return len(rows)


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


# --- helpers ------------------------------------------------------------------------------------
def _counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows per source and per label within each source (the model card's data manifest)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        per[row["source"]][row["label"]] += 1
    return {
        "rows": len(rows),
        "rows_per_label": dict(Counter(r["label"] for r in rows)),
        "rows_per_source": {source: sum(c.values()) for source, c in sorted(per.items())},
        "rows_per_source_and_label": {s: dict(sorted(c.items())) for s, c in sorted(per.items())},
    }


def _model_info(row: Any) -> ModelInfo:
    metrics, manifest = row.metrics or {}, row.manifest or {}
    report = metrics.get("eval") if isinstance(metrics.get("eval"), dict) else metrics
    f1 = report.get("macro_f1") if isinstance(report, dict) else None
    train = manifest.get("train")
    rows = train.get("rows") if isinstance(train, dict) else manifest.get("rows")
    return ModelInfo(
        version=row.version,
        created_at=row.created_at,
        status=row.status,
        backbone=row.backbone,
        train_rows=None if rows is None else int(rows),
        eval_macro_f1=None if f1 is None else float(f1),
        parent_version=row.parent_version,
        reason=row.reason,
    )


def _lexicon_prior(card: dict[str, Any]) -> float | None:
    """The strength of the VADER lexicon prior the active model got (None: it got none).

    The bootstrap model writes each lexicon word's valence into its embedding row after
    training (`classifier.lexicon.apply_lexicon_prior`); a retrain of such a model does the same,
    so it does not lose that knowledge. The card records it for the next retrain.
    """
    prior = card.get("lexicon_prior")
    if isinstance(prior, dict) and prior.get("strength"):
        return float(prior["strength"])
    bootstrap = card.get("bootstrap")
    if isinstance(bootstrap, dict) and bootstrap.get("lexicon_prior_rows"):
        from classifier.bootstrap import PRIOR_STRENGTH

        return float(PRIOR_STRENGTH)
    return None


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _fail_dead_run(session: AsyncSession) -> int:
    """A `running` run whose owning process is gone (crash, kill -9) is marked failed."""
    from storage import repositories as repo

    run = await repo.running_training_run(session)
    if run is None:
        return 0
    pid = (run.details or {}).get("pid")
    if isinstance(pid, int) and _pid_alive(pid):
        return 0
    await repo.finish_training_run(
        session,
        run.id,
        status="failed",
        error="interrupted: the process running it stopped before it finished",
    )
    return 1


def _progress_of(event: dict[str, Any], version: str) -> Progress | None:
    """A worker event as a `Progress` step (None for events the admin needn't see)."""
    kind = event.get("event")
    if kind == "start":
        return Progress("training", version, train_rows=event.get("train_rows"))
    if kind == "epoch":
        epoch, epochs = event["epoch"], event["epochs"]
        return Progress("training", version, epoch, epochs, event.get("dev_macro_f1"))
    if kind == "evaluating":
        return Progress("evaluating", version)
    return None


def _cleanup(workdir: Path, *, keep_log: bool) -> None:
    """Delete the run's data files; keep the worker log of a failed run for the operator."""
    for name in ("train.jsonl", "eval.jsonl", "dev.jsonl", "spec.json"):
        with contextlib.suppress(OSError):
            (workdir / name).unlink()
    if not keep_log:
        shutil.rmtree(workdir, ignore_errors=True)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
