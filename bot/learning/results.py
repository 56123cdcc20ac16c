"""What the learning loop hands back: progress steps, retrain and rollback outcomes, /models rows,
queue views and the learning part of /status. Plain dataclasses; `bot.texts` formats them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.learning.agreement import PairAgreement
from bot.learning.gate import GateDecision
from classifier.card_text import EvalSet

ProgressCallback = Callable[["Progress"], Awaitable[None] | None]


@dataclass(frozen=True)
class Progress:
    """One step of a training run, for the admin's progress message."""

    stage: str  # preparing | training | evaluating | reviewing | curve | deciding
    version: str | None = None
    epoch: int = 0
    epochs: int = 0
    dev_macro_f1: float | None = None
    train_rows: int | None = None


@dataclass(frozen=True)
class LabelCount:
    """New resolved labels since the last successful run, and how many a run needs."""

    new: int
    needed: int

    @property
    def enough(self) -> bool:
        return self.new >= self.needed


@dataclass
class RetrainOutcome:
    """What a retrain request ended as: `skipped`, `failed`, `promoted` or `rejected`."""

    status: str
    trigger: str
    message: str = ""  # failed: the error; promoted / rejected: the gate's reason
    run_id: int | None = None
    active_version: str | None = None  # the active model the candidate was compared with
    candidate_version: str | None = None
    candidate_report: dict[str, Any] | None = None
    active_report: dict[str, Any] | None = None
    gate: GateDecision | None = None
    new_labels: int = 0
    needed_labels: int = 1
    train_rows: int = 0
    user_rows: int = 0
    eval_rows: int = 0
    user_label_weight: float = 0.0
    seconds: float = 0.0
    # The checks on the labels after the run (bot.learning.checks, bot.learning.review):
    learning_curve: dict[str, Any] | None = None
    suspects: int = 0  # labels now waiting in /review
    flagged: list[tuple[str, float]] = field(default_factory=list)  # sources newly flagged
    names: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"


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
    eval_set: EvalSet | None = None  # the rows `eval_macro_f1` was measured on


@dataclass(frozen=True)
class RollbackOutcome:
    """A rollback or activation: from → to, and the target's macro-F1 on the eval split (None:
    the eval split does not use the model's labels; it only had to score a probe text)."""

    from_version: str | None
    to_version: str
    macro_f1: float | None
    eval_rows: int


@dataclass(frozen=True)
class QueueView:
    """What the /label message shows: an item (None: queue empty) and how many are left."""

    item: Any  # storage.repositories.QueueItem | None
    remaining: int
    labels: list[str] = field(default_factory=list)
    paused: bool = False  # an admin excluded this person (`/annotator exclude`)


@dataclass(frozen=True)
class AnnotatorReport:
    """Labels per person, Cohen's kappa per pair, and (username, first name) per person."""

    counts: dict[int, int]
    pairs: list[PairAgreement]
    names: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class LastRun:
    started_at: datetime | None
    trigger: str
    candidate_version: str | None
    result: str  # the decision (promoted | rejected), else the status


@dataclass(frozen=True)
class LearningStatus:
    """The learning part of /status."""

    training: bool
    last_run: LastRun | None
    interval_minutes: float
    min_new_labels: int
    annotators: AnnotatorReport | None  # with LABELS_PER_ITEM ≥ 2
    # bot.learning.annotators.AnnotatorList when there are labels: reliability, alpha, kappa
    annotator_list: Any = None
    learning_curve: dict[str, Any] | None = None  # of the latest run that made one
    pending_reviews: int = 0
