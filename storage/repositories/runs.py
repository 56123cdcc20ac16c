"""Training runs: one row per retraining attempt, from trigger to decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import NotFoundError, TrainingAlreadyRunningError
from storage.models import RUN_STATUSES, RUN_TRIGGERS, TrainingRun, utcnow
from storage.repositories.dataset import count_new_resolved_labels


async def running_training_run(session: AsyncSession) -> TrainingRun | None:
    """The run still marked `running`, if any."""
    return await session.scalar(
        select(TrainingRun).where(TrainingRun.status == "running").order_by(TrainingRun.id)
    )


async def start_training_run(
    session: AsyncSession,
    trigger: str,
    requested_by: int | None = None,
    *,
    details: dict[str, Any] | None = None,
) -> TrainingRun:
    """Record a run as `running` (with `details`, e.g. the owning process id). Raises
    `TrainingAlreadyRunningError` if one is running.

    On SQLite the unit of work holds the write lock (BEGIN IMMEDIATE), so two processes cannot
    both start a run.
    """
    if trigger not in RUN_TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r} (expected one of {RUN_TRIGGERS})")
    current = await running_training_run(session)
    if current is not None:
        raise TrainingAlreadyRunningError(
            f"training run {current.id} ({current.trigger}) is still running"
        )
    run = TrainingRun(trigger=trigger, requested_by=requested_by, status="running", details=details)
    run.started_at = utcnow()
    session.add(run)
    await session.flush()
    return run


async def finish_training_run(
    session: AsyncSession,
    run_id: int,
    *,
    status: str,
    error: str | None = None,
    candidate_version: str | None = None,
    decision: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> TrainingRun:
    """Close a run: `succeeded` (with candidate, decision `promoted`|`rejected`, reason) or
    `failed` (with the error)."""
    if status not in RUN_STATUSES or status == "running":
        raise ValueError(f"a run finishes as succeeded or failed, not {status!r}")
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise NotFoundError(f"training run {run_id} does not exist")
    run.status, run.finished_at, run.error = status, utcnow(), error
    run.candidate_version, run.decision, run.reason = candidate_version, decision, reason
    if details is not None:
        run.details = details
    await session.flush()
    return run


async def get_training_run(session: AsyncSession, run_id: int) -> TrainingRun | None:
    return await session.get(TrainingRun, run_id)


async def last_training_run(
    session: AsyncSession, *, status: str | None = "succeeded"
) -> TrainingRun | None:
    """The most recently started run with this status (None: any finished run)."""
    stmt = select(TrainingRun)
    if status is None:
        stmt = stmt.where(TrainingRun.status != "running")
    else:
        stmt = stmt.where(TrainingRun.status == status)
    return await session.scalar(
        stmt.order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc()).limit(1)
    )


async def list_training_runs(session: AsyncSession, limit: int = 20) -> list[TrainingRun]:
    """Runs, newest first."""
    return list(
        await session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit))
    )


async def fail_stale_runs(session: AsyncSession, error: str = "interrupted by a restart") -> int:
    """Mark runs left `running` (by a process that died) as failed; returns how many."""
    result = await session.execute(
        update(TrainingRun)
        .where(TrainingRun.status == "running")
        .values(status="failed", error=error, finished_at=utcnow())
    )
    return result.rowcount or 0


async def recent_failures(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many of the newest finished runs failed in a row, and when the newest of them ended.

    Runs still `running` are not counted; a succeeded run ends the streak.
    """
    statuses = await session.execute(
        select(TrainingRun.status, TrainingRun.finished_at)
        .where(TrainingRun.status != "running")
        .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
        .limit(64)  # the back-off is capped long before this many failures
    )
    streak, newest = 0, None
    for status, finished_at in statuses:
        if status != "failed":
            break
        streak += 1
        newest = newest or finished_at
    return streak, newest


async def last_trained_at(session: AsyncSession) -> datetime | None:
    """Start time of the last successful run: labels changed after it are not trained on."""
    run = await last_training_run(session, status="succeeded")
    return None if run is None else run.started_at


async def new_labels_since_last_run(session: AsyncSession) -> int:
    """Resolved labels added or changed since the last successful training run started."""
    return await count_new_resolved_labels(session, await last_trained_at(session))
