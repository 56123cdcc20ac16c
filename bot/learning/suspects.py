"""Suspicious labels: confident learning with cross-validation on the user labels.

Run in the training worker after the candidate is trained. The user labels of the training rows
are split into `folds` parts; for each part a model is trained the way the candidate was (the
bootstrap rows plus the other parts' user labels, same weights and recipe) and predicts the
part it never saw. A label is suspicious when, out of fold, another class is confidently
predicted: its probability reaches that class's threshold t_j (the mean out-of-fold probability
of j over the rows labelled j) while the given label's stays below its own threshold (Northcutt,
Jiang & Chuang 2021, "Confident learning", the confident joint's off-diagonal). Suspects are
ranked by the out-of-fold probability of the given label, lowest (most suspicious) first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Row = dict[str, Any]
FOLDS = 4
MIN_LABELS = 20  # fewer user labels than this: nothing to cross-validate
SEED = 0


@dataclass(frozen=True)
class SuspectLabel:
    message_id: int
    given_label: str
    suggested_label: str
    score: float  # out-of-fold probability of the given label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def out_of_fold(
    train_rows: Sequence[Row],
    labels: Sequence[str],
    fit: Callable[[list[Row]], Any],
    folds: int = FOLDS,
) -> tuple[list[int], np.ndarray]:
    """(indexes of the user rows in `train_rows`, their out-of-fold probabilities)."""
    user = [i for i, row in enumerate(train_rows) if row.get("message_id") is not None]
    order = list(user)
    random.Random(SEED).shuffle(order)
    part = {i: k % folds for k, i in enumerate(order)}
    probs = np.zeros((len(user), len(labels)))
    position = {i: p for p, i in enumerate(user)}
    for k in range(folds):
        held = [i for i in user if part[i] == k]
        if not held:
            continue
        model = fit([row for i, row in enumerate(train_rows) if part.get(i) != k])
        predicted = model.predict_proba([train_rows[i]["text"] for i in held])
        columns = [list(model.labels).index(label) for label in labels]
        for i, p in zip(held, predicted, strict=True):
            probs[position[i]] = p[columns]
    return user, probs


def find_suspects(
    given: Sequence[str], probs: np.ndarray, labels: Sequence[str], ids: Sequence[int]
) -> list[SuspectLabel]:
    """Labels another class confidently claims, most suspicious first."""
    index = {label: k for k, label in enumerate(labels)}
    y = np.array([index[g] for g in given])
    thresholds = np.array(
        [probs[y == k, k].mean() if (y == k).any() else 1.0 for k in range(len(labels))]
    )
    suspects = []
    for row, (k, p) in enumerate(zip(y, probs, strict=True)):
        confident = [j for j in range(len(labels)) if j != k and p[j] >= thresholds[j]]
        if not confident or p[k] >= thresholds[k]:
            continue
        j = max(confident, key=lambda c: p[c])
        suspects.append(SuspectLabel(int(ids[row]), labels[k], labels[j], float(p[k])))
    return sorted(suspects, key=lambda s: (s.score, s.message_id))


def suspicious_labels(
    train_rows: Sequence[Row],
    labels: Sequence[str],
    fit: Callable[[list[Row]], Any],
    folds: int = FOLDS,
) -> list[SuspectLabel]:
    """Cross-validate on the user labels and return the suspects (none with too few labels)."""
    if folds < 2 or sum(row.get("message_id") is not None for row in train_rows) < MIN_LABELS:
        return []
    user, probs = out_of_fold(train_rows, labels, fit, folds)
    given = [train_rows[i]["label"] for i in user]
    return find_suspects(given, probs, labels, [train_rows[i]["message_id"] for i in user])
