"""Model versions: /models, /rollback, activation, and keeping a running bot on the database's
active model.

A rollback or an activation (`sentibot models activate`) loads its target and checks that it
scores the current eval split before anything changes; it is written to the audit log (who,
from → to). `sync_active_model` picks up a version activated by another process (`sentibot
retrain`, `sentibot models activate`, a rollback there).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.learning import data as training_data
from bot.learning.data import LearningOptions
from bot.learning.errors import LearningError, RejectedVersionError, RollbackError
from bot.learning.results import ModelInfo, RollbackOutcome
from bot.learning.served import ServedModel
from classifier.card_text import describe_eval
from classifier.metrics import evaluate
from classifier.model import Classifier
from storage import repositories as repo

log = logging.getLogger(__name__)


class ModelVersions:
    """/models, rollback and following the database's active version.

    `lock` is the training lock shared with the `Retrainer`: a rollback holds it, so a retrain
    starting meanwhile cannot judge its candidate against the model being replaced.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        served: ServedModel,
        lock: asyncio.Lock,
        options: LearningOptions,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.served = served
        self.lock = lock
        self.options = options

    async def list_models(self, limit: int | None = 20) -> list[ModelInfo]:
        """Model versions, newest first."""
        async with self.sessionmaker() as session:
            rows = await repo.list_model_versions(session, limit=limit)
        return [model_info(row) for row in rows]

    async def rollback(self, who: int | None, target: str | None = None) -> RollbackOutcome:
        """Make `target` (default: the previously active version) active again.

        The target is loaded and must score the current eval split before anything changes;
        otherwise `RollbackError` says why. Recorded in the audit log (who, from → to).
        """
        return await self._switch(who, target, action="rollback")

    async def activate(
        self, who: int | None, version: str, *, allow_rejected: bool = False
    ) -> RollbackOutcome:
        """Make the registered `version` active (`sentibot models activate`): the same checks
        and audit entry as a rollback; a version the gate rejected only with `allow_rejected`."""
        return await self._switch(who, version, action="activate", allow_rejected=allow_rejected)

    async def _switch(
        self, who: int | None, target: str | None, *, action: str, allow_rejected: bool = False
    ) -> RollbackOutcome:
        if self.lock.locked():
            raise RollbackError(texts.ROLLBACK_WHILE_TRAINING)
        async with self.lock:
            async with self.sessionmaker() as session:
                active = await repo.get_active_model_version(session)
                row = await _rollback_target(session, active, target, allow_rejected)
            classifier, report, eval_rows = await self._check_loads_and_scores(row)
            previous = None if active is None else active.version
            reason = texts.SWITCH_REASONS[action]
            async with self.sessionmaker.begin() as session:
                # Who did it goes to the audit log only: /forget scrubs that, not this free text.
                await repo.activate_model_version(session, row.version, reason=reason)
                await repo.add_audit(session, who, action, {"from": previous, "to": row.version})
            await self.served.swap(classifier, row.version)
        f1 = None if report is None else report["macro_f1"]
        return RollbackOutcome(previous, row.version, f1, eval_rows)

    async def _check_loads_and_scores(
        self, row: Any
    ) -> tuple[Classifier, dict[str, Any] | None, int]:
        """Load the target folder and score the eval split with it (in a thread); a model whose
        labels the eval split does not use must at least give probabilities for a probe text."""
        try:
            classifier = await self.served.load(self.served.folder(row))
        except Exception as exc:
            raise RollbackError(
                texts.ROLLBACK_DOES_NOT_LOAD.format(version=row.version, error=exc)
            ) from None
        try:
            data = await training_data.collect(
                self.sessionmaker, self.options, list(classifier.labels), with_train=False
            )
        except LearningError:  # no eval rows with this model's labels
            await asyncio.to_thread(_probe, classifier, row.version)
            return classifier, None, 0
        texts_, gold = [r["text"] for r in data.eval], [r["label"] for r in data.eval]
        try:
            report = (await asyncio.to_thread(evaluate, classifier, texts_, gold)).to_dict()
        except Exception as exc:
            raise RollbackError(
                texts.ROLLBACK_CANNOT_SCORE.format(version=row.version, error=exc)
            ) from None
        if not report.get("n") or report["macro_f1"] != report["macro_f1"]:  # NaN check
            raise RollbackError(texts.ROLLBACK_NO_SCORES.format(version=row.version))
        return classifier, report, len(texts_)

    async def sync_active_model(self) -> str | None:
        """Load the database's active version if it differs from the predictor's (a CLI retrain
        or rollback in another process). Returns the new version, or None."""
        predictor = self.served.predictor
        if predictor is None or self.lock.locked():
            return None
        async with self.sessionmaker() as session:
            active = await repo.get_active_model_version(session)
        if active is None or active.version == predictor.version:
            return None
        try:
            classifier = await self.served.load(self.served.folder(active))
        except Exception:
            log.exception(
                "active model %s does not load; keeping %s", active.version, predictor.version
            )
            return None
        await self.served.swap(classifier, active.version)
        return active.version


async def _rollback_target(
    session: AsyncSession, active: Any, target: str | None, allow_rejected: bool = False
) -> Any:
    """The version row to go back to, or `RollbackError` saying why there is none."""
    if target is None:
        previous = _previous_row(await repo.list_model_versions(session))
        if previous is None:
            raise RollbackError(texts.ROLLBACK_NO_PREVIOUS)
        return previous
    row = await repo.get_model_version(session, target)
    if row is None:
        raise RollbackError(texts.ROLLBACK_UNKNOWN.format(version=target))
    if active is not None and row.version == active.version:
        raise RollbackError(texts.ROLLBACK_ALREADY_ACTIVE.format(version=target))
    if row.status == "rejected" and not allow_rejected:
        raise RejectedVersionError(
            texts.ROLLBACK_REJECTED.format(version=target, reason=row.reason)
        )
    return row


def _previous_row(rows: list[Any]) -> Any:
    """Where /rollback without a version goes: the most recently activated retired version."""
    previous = [r for r in rows if r.status == "retired" and r.activated_at is not None]
    return max(previous, key=lambda r: r.activated_at) if previous else None


def previous_version(rows: list[Any]) -> str | None:
    row = _previous_row(rows)
    return None if row is None else row.version


def _probe(classifier: Classifier, version: str) -> None:
    """Finite probabilities for a probe text, or `RollbackError`."""
    try:
        probs = classifier.predict_proba(["this is a test message"])
    except Exception as exc:
        raise RollbackError(
            texts.ROLLBACK_CANNOT_SCORE.format(version=version, error=exc)
        ) from None
    if not np.isfinite(probs).all():
        raise RollbackError(texts.ROLLBACK_NO_SCORES.format(version=version))


def model_info(row: Any) -> ModelInfo:
    """A `model_versions` row as a /models line's data (metrics and manifest: the card summary,
    `classifier.card.ModelCard.summary_*`)."""
    metrics, manifest = row.metrics or {}, row.manifest or {}
    f1, rows = metrics.get("macro_f1"), manifest.get("rows")
    return ModelInfo(
        eval_set=describe_eval(metrics, manifest),
        version=row.version,
        created_at=row.created_at,
        status=row.status,
        backbone=row.backbone,
        train_rows=None if rows is None else int(rows),
        eval_macro_f1=None if f1 is None else float(f1),
        parent_version=row.parent_version,
        reason=row.reason,
    )
