"""Evaluation: accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from classifier.progress import progress as show_progress

if TYPE_CHECKING:
    from classifier.model import Classifier


@dataclass
class EvalReport:
    """Metrics over `labels`; `confusion[i][j]` counts gold `labels[i]` predicted as `labels[j]`."""

    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    n: int
    # Set when the gold data used only some of the model's labels and predictions were
    # restricted to those (argmax over them); None when all model labels were scored.
    restricted_to: list[str] | None = field(default=None)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "labels": list(self.labels),
            "per_class": {k: dict(v) for k, v in self.per_class.items()},
            "confusion": [list(row) for row in self.confusion],
            "n": self.n,
            "restricted_to": None if self.restricted_to is None else list(self.restricted_to),
        }

    def format_table(self) -> str:
        """A readable table (per-class rows, then accuracy, macro-F1 and the confusion matrix)."""
        width = max([len(label) for label in self.labels] + [9])
        lines = []
        if self.restricted_to is not None:
            lines.append(
                "note: the data uses only some of the model's labels; predictions restricted to "
                + ", ".join(self.restricted_to)
            )
        lines.append(f"{'label':<{width}}  precision  recall     f1  support")
        for label in self.labels:
            row = self.per_class[label]
            lines.append(
                f"{label:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
                f"{row['f1']:5.3f}  {int(row['support']):7d}"
            )
        lines.append(f"{'accuracy':<{width}}  {self.accuracy:.3f}   (n={self.n})")
        lines.append(f"{'macro-F1':<{width}}  {self.macro_f1:.3f}")
        lines.append("confusion (rows = gold, columns = predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{label[:8]:>8}" for label in self.labels))
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:<{width}}  " + " ".join(f"{c:8d}" for c in row))
        return "\n".join(lines)


def confusion_matrix(gold: np.ndarray, pred: np.ndarray, num_labels: int) -> np.ndarray:
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (gold, pred), 1)
    return matrix


def report_from_indices(gold: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> EvalReport:
    """Build an EvalReport from integer gold/predicted indices into `labels`."""
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    matrix = confusion_matrix(gold, pred, len(labels))
    tp = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    # Macro over the labels that occur in gold or predictions (sklearn's default): a label that
    # is absent from both says nothing about the model and must not drag the mean to zero.
    present = (support > 0) | (predicted > 0)
    macro = float(f1[present].mean()) if present.any() else 0.0
    n = int(len(gold))
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return EvalReport(
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=macro,
        labels=list(labels),
        per_class=per_class,
        confusion=matrix.tolist(),
        n=n,
    )


def evaluate(
    classifier: Classifier,
    texts: Sequence[str],
    gold: Sequence[str],
    *,
    restrict: bool = True,
    progress: bool | None = True,
) -> EvalReport:
    """Score `classifier` on `texts` against gold label names.

    When `gold` uses only a strict subset of the model's labels (e.g. binary data against a
    3-class model) and `restrict` is true, predictions are the argmax over those labels only and
    the report's `restricted_to` lists them. A subset of ONE label is not restricted: the argmax
    over a single label is always right, so the scores would say nothing. Raises ValueError on a
    gold label the model lacks. `progress=False` silences the progress of a long evaluation
    (`classifier.progress`).
    """

    if len(texts) != len(gold):
        raise ValueError(f"{len(texts)} texts but {len(gold)} gold labels")
    index = {label: i for i, label in enumerate(classifier.labels)}
    unknown = sorted({g for g in gold if g not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the model's labels {classifier.labels}")
    with show_progress("evaluating", len(texts), unit="texts", enabled=progress) as bar:
        probs = classifier.predict_proba(list(texts), on_batch=bar.update)
    gold_set = set(gold)
    present = [label for label in classifier.labels if label in gold_set]
    if restrict and 2 <= len(present) < len(classifier.labels):
        cols = [index[label] for label in present]
        local = {label: i for i, label in enumerate(present)}
        pred = probs[:, cols].argmax(axis=1) if len(texts) else np.zeros(0, dtype=np.int64)
        report = report_from_indices(np.array([local[g] for g in gold]), pred, present)
        report.restricted_to = present
        return report
    pred = probs.argmax(axis=1) if len(texts) else np.zeros(0, dtype=np.int64)
    return report_from_indices(np.array([index[g] for g in gold]), pred, classifier.labels)
