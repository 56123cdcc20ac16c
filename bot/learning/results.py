"""What the learning loop hands back: progress steps, retrain and rollback outcomes, /models rows,
queue views and annotator reports. Plain dataclasses; the handlers and the CLI format them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.agreement import PairAgreement
from bot.gate import GateDecision
from bot.learning.data import USER_LABEL_WEIGHT

ProgressCallback = Callable[["Progress"], Awaitable[None] | None]


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
