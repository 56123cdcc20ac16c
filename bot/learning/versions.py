"""Model versions: /models, /rollback, and keeping a running bot on the database's active model.

A rollback loads its target and checks that it scores the current eval split before anything
changes; it is written to the audit log (who, from → to). `sync_active_model` picks up a
version activated by another process (`sentibot retrain` or a rollback there).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bot.learning.core import LearningCore
from bot.learning.errors import IN_PROGRESS, RollbackError
from bot.learning.results import ModelInfo, RollbackOutcome

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


class ModelVersions(LearningCore):
    """The versions part of `LearningService`."""

    async def list_models(self, limit: int | None = 20) -> list[ModelInfo]:
        """Model versions, newest first."""
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            rows = await repo.list_model_versions(session, limit=limit)
        return [model_info(row) for row in rows]

    # --- rollback -----------------------------------------------------------------------------
    async def rollback(self, who: int | None, target: str | None = None) -> RollbackOutcome:
        """Make `target` (default: the previously active version) active again.

        The target is loaded and must score the current eval split before anything changes;
        otherwise `RollbackError` says why. Recorded in the audit log (who, from → to).
        """
        if self.training:
            raise RollbackError(f"{IN_PROGRESS}; try again when it has finished")
        # Hold the training lock: a retrain starting meanwhile would judge its candidate against
        # the model being replaced and could promote over the rollback.
        async with self._lock:
            return await self._rollback(who, target)

    async def _rollback(self, who: int | None, target: str | None) -> RollbackOutcome:
        from storage import repositories as repo

        async with self.sessionmaker() as session:
            active = await repo.get_active_model_version(session)
            row = await _rollback_target(session, active, target)
        classifier, report, eval_rows = await self._check_loads_and_scores(row)
        async with self.sessionmaker.begin() as session:
            # Who did it goes to the audit log only: /forget scrubs that, not this free text.
            await repo.activate_model_version(
                session, row.version, reason="rolled back (see audit_log)"
            )
            await repo.add_audit(
                session,
                who,
                "rollback",
                {"from": None if active is None else active.version, "to": row.version},
            )
        if self.predictor is not None:
            self.predictor.swap(classifier, row.version)
        await self._rescore_quietly(row.version)
        return RollbackOutcome(
            None if active is None else active.version, row.version, report["macro_f1"], eval_rows
        )

    async def _check_loads_and_scores(self, row: Any):
        """Load the target folder and score the eval split with it (in a thread)."""
        from classifier.artifacts import load_model
        from classifier.metrics import evaluate

        try:
            classifier = await asyncio.to_thread(load_model, row.folder, self.device)
        except Exception as exc:
            raise RollbackError(f"{row.version} does not load: {exc}") from None
        data = await self._collect(list(classifier.labels), with_train=False)
        texts = [r["text"] for r in data.eval]
        gold = [r["label"] for r in data.eval]
        try:
            report = (await asyncio.to_thread(evaluate, classifier, texts, gold)).to_dict()
        except Exception as exc:
            raise RollbackError(f"{row.version} cannot score the eval split: {exc}") from None
        if not report.get("n") or report["macro_f1"] != report["macro_f1"]:  # NaN check
            raise RollbackError(f"{row.version} did not produce usable scores on the eval split")
        return classifier, report, len(texts)

    # --- keeping a running bot in step ----------------------------------------------------------
    async def sync_active_model(self) -> str | None:
        """Load the database's active version if it differs from the predictor's (a CLI retrain
        or rollback in another process). Returns the new version, or None."""
        from classifier.artifacts import load_model
        from storage import repositories as repo

        if self.predictor is None or self.training:
            return None
        async with self.sessionmaker() as session:
            active = await repo.get_active_model_version(session)
        if active is None or active.version == self.predictor.version:
            return None
        try:
            classifier = await asyncio.to_thread(load_model, active.folder, self.device)
        except Exception:
            log.exception(
                "active model %s does not load; keeping %s", active.version, self.predictor.version
            )
            return None
        self.predictor.swap(classifier, active.version)
        await self._rescore_quietly(active.version)
        return active.version


async def _rollback_target(session: AsyncSession, active: Any, target: str | None):
    """The version row to go back to, or `RollbackError` saying why there is none."""
    from storage import repositories as repo

    if target is None:
        rows = await repo.list_model_versions(session)
        previous = [r for r in rows if r.status == "retired" and r.activated_at is not None]
        if not previous:
            raise RollbackError("there is no previously active version to go back to")
        return max(previous, key=lambda r: r.activated_at)
    row = await repo.get_model_version(session, target)
    if row is None:
        raise RollbackError(f"there is no model version {target} (see /models)")
    if active is not None and row.version == active.version:
        raise RollbackError(f"{target} is already the active model")
    if row.status == "rejected":
        raise RollbackError(f"{target} was rejected by the promotion gate ({row.reason})")
    return row


def model_info(row: Any) -> ModelInfo:
    """A `model_versions` row as a /models line's data (metrics and manifest: the card summary,
    `classifier.card.ModelCard.summary_*`)."""
    metrics, manifest = row.metrics or {}, row.manifest or {}
    f1, rows = metrics.get("macro_f1"), manifest.get("rows")
    return ModelInfo(
        version=row.version,
        created_at=row.created_at,
        status=row.status,
        backbone=row.backbone,
        train_rows=None if rows is None else int(rows),
        eval_macro_f1=None if f1 is None else float(f1),
        parent_version=row.parent_version,
        reason=row.reason,
    )
