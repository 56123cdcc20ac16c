"""The training worker's checks on the labels after a candidate is trained: suspicious labels
for /review (`bot.learning.suspects`) and the learning curve (`bot.learning.curve`).

Every extra fit is trained exactly like the candidate (recipe, weights, dev rows, and the
bootstrap recipe's after-training steps when the candidate got them), without progress events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.learning.curve import learning_curve
from bot.learning.suspects import suspicious_labels
from classifier.bootstrap import postprocess
from classifier.metrics import evaluate
from classifier.model import Classifier
from classifier.recipe import RunSettings, TrainRecipe
from classifier.training import train

if TYPE_CHECKING:
    from bot.learning.worker import WorkerSpec, _Events

Row = dict[str, Any]


def fit(spec: WorkerSpec, rows: list[Row], dev: Any) -> Classifier:
    """One more model trained the way the candidate was, on `rows`."""
    result = train(
        [r["text"] for r in rows],
        [r["label"] for r in rows],
        spec.labels,
        TrainRecipe.from_dict(spec.config),
        run=RunSettings(device=spec.device, feature_cache=spec.feature_cache, progress=False),
        weights=[float(r.get("weight", 1.0)) for r in rows],
        dev=dev,
    )
    if spec.postprocess:
        postprocess(result.classifier, dev)
    return result.classifier


def label_checks(
    spec: WorkerSpec,
    events: _Events,
    train_rows: list[Row],
    eval_rows: list[Row],
    dev: Any,
    candidate_report: dict[str, Any],
) -> dict[str, Any]:
    """`{"suspects": [...], "curve": {...}}` for the checks the spec asks for."""
    out: dict[str, Any] = {}
    if spec.review_folds:
        events.emit("reviewing", folds=spec.review_folds)
        found = suspicious_labels(
            train_rows, spec.labels, lambda rows: fit(spec, rows, dev), spec.review_folds
        )
        out["suspects"] = [s.to_dict() for s in found]
    if spec.learning_curve:
        events.emit("curve")
        texts = [r["text"] for r in eval_rows]
        gold = [r["label"] for r in eval_rows]

        def fit_and_score(rows: list[Row]) -> float:
            return evaluate(fit(spec, rows, dev), texts, gold).macro_f1

        out["curve"] = learning_curve(train_rows, candidate_report["macro_f1"], fit_and_score)
    return out
