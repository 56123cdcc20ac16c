"""Rewrite `model_versions.metrics` / `.manifest` into the model card's summary shape.

Before model cards (`classifier.card`) each writer stored its own shape: the bootstrap build and
`sentibot train` a flat report (`metrics.macro_f1`), the retrain worker `{"eval", "active_eval",
"dev", "epochs_run"}` (so `json_extract(metrics, '$.macro_f1')` was blank for every retrained
version); every manifest was the data manifest plus `train_config`. From here on every row holds

    metrics:  {"card_version": 1, "measured_on": "eval" | "dev" | null,
               "macro_f1", "accuracy", "n", "eval", "dev", "active_eval"}
    manifest: {"card_version": 1, "kind": "bootstrap" | "train" | "retrain",
               <the data manifest: rows, rows_per_label, ...>, "recipe": {...}}

This file keeps its own copy of the rules, as a migration must not change when the application
does; `tests/storage/test_migrations.py` checks it agrees with `ModelCard.summary_*`.
Downgrade writes the older shapes back; a retrain row's `epochs_run` does not come back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARD_VERSION = 1
_RUN_KEYS = ("device", "num_threads", "feature_cache")  # machine settings, not the recipe

_versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("metrics", sa.JSON),
    sa.column("manifest", sa.JSON),
)


def _is_report(value: Any) -> bool:
    return isinstance(value, dict) and "macro_f1" in value


def summarize(metrics: Any, manifest: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An older row's (metrics, manifest) in the summary shape."""
    data = dict(manifest) if isinstance(manifest, dict) else {}
    recipe = dict(data.pop("train_config", None) or {})
    for key in _RUN_KEYS:
        recipe.pop(key, None)
    eval_, dev, active = None, None, None
    if isinstance(metrics, dict) and _is_report(metrics.get("eval")):
        kind, eval_, dev = "retrain", metrics["eval"], metrics.get("dev")
        active = metrics.get("active_eval")
    elif "bootstrap" in data:
        kind, eval_ = "bootstrap", metrics if _is_report(metrics) else None
    else:
        kind, dev = "train", metrics if _is_report(metrics) else None
    on, report = ("eval", eval_) if eval_ is not None else ("dev", dev)
    report = report or {}
    summary = {
        "card_version": CARD_VERSION,
        "measured_on": on if report else None,
        "macro_f1": report.get("macro_f1"),
        "accuracy": report.get("accuracy"),
        "n": report.get("n"),
        "eval": eval_,
        "dev": dev,
        "active_eval": active,
    }
    return summary, {"card_version": CARD_VERSION, "kind": kind, **data, "recipe": recipe}


def unsummarize(metrics: dict[str, Any], manifest: Any) -> tuple[Any, dict[str, Any]]:
    """A summary-shape row as the older code wrote it."""
    data = dict(manifest) if isinstance(manifest, dict) else {}
    kind = data.pop("kind", None)
    data.pop("card_version", None)
    data["train_config"] = data.pop("recipe", None) or {}
    if kind == "retrain":
        old = {k: metrics.get(k) for k in ("eval", "active_eval", "dev")}
    else:
        old = metrics.get(metrics.get("measured_on") or "") or {}
    return old, data


def _rewrite(convert, wanted: bool) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_versions.c.id, _versions.c.metrics, _versions.c.manifest))
    for row_id, metrics, manifest in rows.all():
        summarized = isinstance(metrics, dict) and "card_version" in metrics
        if summarized == wanted:
            continue
        new_metrics, new_manifest = convert(metrics, manifest)
        bind.execute(
            _versions.update()
            .where(_versions.c.id == row_id)
            .values(metrics=new_metrics, manifest=new_manifest)
        )


def upgrade() -> None:
    _rewrite(summarize, wanted=True)


def downgrade() -> None:
    _rewrite(unsummarize, wanted=False)
