"""The end of a training run: the promotion gate's decision, the load check, and the records.

`bot.gate.decide` compares the candidate's eval report with the active model's; a candidate it
would promote must also load from its folder, or it is rejected. Either way the version is
registered (active or `rejected` with the reason) and the run finished with the decision.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.gate import GateDecision, decide

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import Settings
    from bot.learning.results import RetrainOutcome
    from classifier.card import ModelCard


def judge(result: dict[str, Any], settings: Settings) -> GateDecision:
    """The gate on the worker's two eval reports (candidate, active), with the settings' limits."""
    return decide(
        result["candidate"],
        result["active"],
        tolerance=settings.promotion_tolerance,
        max_recall_drop=settings.promotion_max_recall_drop,
    )


async def load_candidate(gate: GateDecision, folder: Path, device: str) -> tuple[GateDecision, Any]:
    """Load a candidate the gate promotes: (gate, classifier), or a rejection if it won't load.

    Loaded even without a predictor (the CLI): a folder that fails never becomes active.
    """
    from classifier.artifacts import load_model

    if not gate.promote:
        return gate, None
    try:
        return gate, await asyncio.to_thread(load_model, folder, device)
    except Exception as exc:  # a candidate that does not load never becomes active
        reasons = [f"the candidate folder does not load: {exc}"]
        f1s = (gate.candidate_macro_f1, gate.active_macro_f1)
        return GateDecision(False, reasons, *f1s), None


async def record_decision(
    session: AsyncSession,
    outcome: RetrainOutcome,
    gate: GateDecision,
    card: ModelCard,
    folder: Path,
    backbone: str,
) -> None:
    """Register the candidate (active, or rejected with the reason) and finish the run."""
    from storage import repositories as repo

    version = outcome.candidate_version
    await repo.register_model_version(
        session,
        version,
        folder=str(folder),
        backbone=backbone,
        metrics=card.summary_metrics(),
        manifest=card.summary_manifest(),
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
