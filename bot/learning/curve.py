"""Would more labels help? The learning curve of a retrain.

Run in the training worker after the candidate: the same training, once each on 25%, 50% and
75% of the user labels (nested random subsets; the bootstrap rows always in), scored on the same
eval rows as the candidate (which is the 100% point). The verdict compares the last half:
macro-F1 at 100% minus at 50% above `RISING` is "rising" (more labels still pay off), else
"flattening"; with fewer than `MIN_LABELS` user labels it is "too few labels to tell" (one retrain
to the next moves macro-F1 by about ±0.01, docs/learning.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]
FRACTIONS = (0.25, 0.5, 0.75)
MIN_LABELS = 100
RISING = 0.01
SEED = 0
VERDICTS = ("rising", "flattening", "too few labels to tell")


def learning_curve(
    train_rows: Sequence[Row],
    full_macro_f1: float,
    fit_and_score: Callable[[list[Row]], float],
    fractions: Sequence[float] = FRACTIONS,
) -> dict[str, Any]:
    """`{"points": [{"fraction", "labels", "macro_f1"}, …], "verdict", "gain"}`."""
    user = [i for i, row in enumerate(train_rows) if row.get("message_id") is not None]
    base = [row for row in train_rows if row.get("message_id") is None]
    points = []
    if len(user) >= MIN_LABELS:
        order = list(user)
        random.Random(SEED).shuffle(order)
        for fraction in fractions:
            chosen = sorted(order[: round(fraction * len(order))])
            rows = base + [train_rows[i] for i in chosen]
            points.append(
                {"fraction": fraction, "labels": len(chosen), "macro_f1": fit_and_score(rows)}
            )
    points.append({"fraction": 1.0, "labels": len(user), "macro_f1": full_macro_f1})
    return {**verdict(points), "points": points}


def verdict(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rising, flattening or too few labels to tell (and the gain from 50% to 100%)."""
    half = next((p for p in points if p["fraction"] == 0.5), None)
    full = points[-1]
    if half is None or full["labels"] < MIN_LABELS:
        return {"verdict": VERDICTS[2], "gain": None}
    gain = float(full["macro_f1"] - half["macro_f1"])
    return {"verdict": VERDICTS[0] if gain > RISING else VERDICTS[1], "gain": gain}
