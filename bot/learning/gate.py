"""The promotion gate: should a freshly trained candidate replace the active model?

A pure function over two evaluation reports (the `EvalReport.to_dict()` shape) computed on the
same evaluation split. The candidate is promoted only when

- its macro-F1 is at least the active model's minus `tolerance` (PROMOTION_TOLERANCE), and
- no class's recall drops by more than `max_recall_drop` (PROMOTION_MAX_RECALL_DROP).

Every check leaves a sentence in `reasons`, so an admin reading the report sees why; they are
recorded with the decision (`training_runs.reason`, `model_versions.reason`), so they are written
here, next to their checks, rather than in `bot.texts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Report = Mapping[str, Any]


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict: `promote`, plus the sentences that explain it."""

    promote: bool
    reasons: list[str]
    candidate_macro_f1: float
    active_macro_f1: float | None
    recall_changes: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def decision(self) -> str:
        """`promoted` or `rejected` (the word stored in `training_runs.decision`)."""
        return "promoted" if self.promote else "rejected"

    @property
    def reason(self) -> str:
        """All reasons as one line (stored in `training_runs.reason`)."""
        return "; ".join(self.reasons)


def _recalls(report: Report) -> dict[str, float]:
    """Recall per class, only for classes that occur in the evaluation data (support > 0)."""
    per_class = report.get("per_class") or {}
    return {
        label: float(stats.get("recall", 0.0))
        for label, stats in per_class.items()
        if int(stats.get("support", 0)) > 0
    }


def decide(
    candidate: Report,
    active: Report | None,
    *,
    tolerance: float,
    max_recall_drop: float,
) -> GateDecision:
    """Compare `candidate` with `active` (both scored on the same eval split) and decide."""
    cand_f1 = float(candidate["macro_f1"])
    if active is None:
        return GateDecision(
            promote=True,
            reasons=[f"there is no active model; the candidate (macro-F1 {cand_f1:.3f}) is used"],
            candidate_macro_f1=cand_f1,
            active_macro_f1=None,
        )
    act_f1 = float(active["macro_f1"])
    reasons: list[str] = []
    ok = True
    floor = act_f1 - tolerance
    if cand_f1 + 1e-12 >= floor:
        reasons.append(
            f"macro-F1 {cand_f1:.3f} vs active {act_f1:.3f} "
            f"(change {cand_f1 - act_f1:+.3f}, allowed down to {floor:.3f})"
        )
    else:
        ok = False
        reasons.append(
            f"macro-F1 {cand_f1:.3f} is below the active model's {act_f1:.3f} "
            f"by {act_f1 - cand_f1:.3f}, more than the tolerance {tolerance:.3f}"
        )
    cand_rec, act_rec = _recalls(candidate), _recalls(active)
    changes = {label: (act_rec[label], cand_rec.get(label, 0.0)) for label in act_rec}
    drops = [
        (label, before, after)
        for label, (before, after) in changes.items()
        if before - after > max_recall_drop + 1e-12
    ]
    for label, before, after in drops:
        ok = False
        reasons.append(
            f"recall of {label} drops from {before:.3f} to {after:.3f} "
            f"({after - before:+.3f}; at most {max_recall_drop:.3f} allowed)"
        )
    if not drops:
        reasons.append(f"no class's recall drops by more than {max_recall_drop:.3f}")
    return GateDecision(
        promote=ok,
        reasons=reasons,
        candidate_macro_f1=cand_f1,
        active_macro_f1=act_f1,
        recall_changes=changes,
    )
