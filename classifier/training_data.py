"""The rows one training run learns from: label ids, the dev split, loss weights, the manifest."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from classifier.recipe import TrainRecipe


def data_manifest(texts: Sequence[str], labels: Sequence[str], label_names: Sequence[str]) -> dict:
    """Rows per label and a SHA-256 over the (text, label) pairs in order."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
        digest.update(label.encode("utf-8"))
        digest.update(b"\x1e")
    counts = Counter(labels)
    return {
        "rows": len(texts),
        "rows_per_label": {label: counts.get(label, 0) for label in label_names},
        "sha256": digest.hexdigest(),
    }


def effective_batch_size(rows: int, batch_size: int, min_steps: int = 8) -> int:
    """Shrink the batch on small data so an epoch has at least `min_steps` optimiser steps.

    A few dozen user labels at batch 64 would give one step per epoch and a model that barely
    moves from uniform before early stopping ends it.
    """
    return max(1, min(batch_size, math.ceil(rows / min_steps)))


def _label_ids(labels: Sequence[str | int], label_names: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    out = np.empty(len(labels), dtype=np.int64)
    for row, label in enumerate(labels):
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if not 0 <= label < len(label_names):
                raise ValueError(f"label index {label} out of range (row {row})")
            out[row] = label
        elif label in index:
            out[row] = index[label]
        else:
            raise ValueError(f"unknown label {label!r} at row {row} (expected {list(label_names)})")
    return out


def _split_dev(
    n: int, y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split: about `fraction` of each label's rows go to dev."""
    train_idx, dev_idx = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        k = int(round(len(rows) * fraction)) if len(rows) >= 5 else 0
        dev_idx.append(rows[:k])
        train_idx.append(rows[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(dev_idx))


def _class_balance(y: np.ndarray, w: np.ndarray, num_labels: int) -> np.ndarray:
    """Per-label factors that give every present label the same total loss weight.

    Computed from the *weighted* counts, so caller weights that already balance the labels
    (the bootstrap corpus does) are left as they are. Factors average 1 over the rows.
    """
    totals = np.bincount(y, weights=w, minlength=num_labels).astype(np.float64)
    present = totals > 0
    factors = np.zeros(num_labels, dtype=np.float64)
    factors[present] = totals[present].sum() / (present.sum() * totals[present])
    return factors.astype(np.float32)


@dataclass
class TrainingData:
    """Training and dev rows as the training loop uses them (labels as ids, weights balanced)."""

    texts: list[str]  # every input text, for the data manifest
    y_all: np.ndarray
    train_texts: list[str]
    y_train: torch.Tensor
    w_train: torch.Tensor
    dev_texts: list[str]
    y_dev: np.ndarray
    dev_source: str  # "explicit", "split" or "train" (no dev rows: report on the training data)
    weighted: bool  # the caller gave per-row weights

    def manifest(self, label_names: list[str]) -> dict:
        """The data manifest saved in the model card."""
        manifest = data_manifest(self.texts, [label_names[i] for i in self.y_all], label_names)
        manifest.update(
            {
                "train_rows": len(self.train_texts),
                "dev_rows": len(self.dev_texts),
                "dev_source": self.dev_source,
                "weighted": self.weighted,
            }
        )
        return manifest


def prepare_data(
    texts: Sequence[str],
    labels: Sequence[str | int],
    label_names: list[str],
    recipe: TrainRecipe,
    weights: Sequence[float] | None,
    dev: tuple[Sequence[str], Sequence[str | int]] | None,
    rng: np.random.Generator,
) -> TrainingData:
    """Label ids, the dev split (drawn from `rng`) and class-balanced per-row weights."""
    texts = list(texts)
    y_all = _label_ids(labels, label_names)
    w_all = (
        np.ones(len(texts), dtype=np.float32)
        if weights is None
        else np.asarray(weights, np.float32)
    )
    dev_source = "explicit"
    if dev is not None:
        train_idx = np.arange(len(texts))
        dev_texts, y_dev = list(dev[0]), _label_ids(dev[1], label_names)
    else:
        train_idx, dev_idx = _split_dev(len(texts), y_all, recipe.dev_fraction, rng)
        dev_source = "split" if len(dev_idx) else "train"
        if not len(dev_idx):
            dev_idx = train_idx
        dev_texts, y_dev = [texts[i] for i in dev_idx], y_all[dev_idx]
    if recipe.balance_classes:
        balance = _class_balance(y_all[train_idx], w_all[train_idx], len(label_names))
        w_all = w_all * balance[y_all]
    return TrainingData(
        texts=texts,
        y_all=y_all,
        train_texts=[texts[i] for i in train_idx],
        y_train=torch.from_numpy(y_all[train_idx]),
        w_train=torch.from_numpy(w_all[train_idx]),
        dev_texts=dev_texts,
        y_dev=y_dev,
        dev_source=dev_source,
        weighted=weights is not None,
    )
