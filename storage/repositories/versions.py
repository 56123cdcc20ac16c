"""Model versions: register, activate (exactly one active), reject, list, delete.

`folder` is stored as the caller gives it; the bot stores it relative to MODEL_DIR (migration
0005 converted older absolute paths).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import NotFoundError
from storage.models import MODEL_STATUSES, ModelVersion, utcnow


async def register_model_version(
    session: AsyncSession,
    version: str,
    *,
    folder: str,
    backbone: str,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    parent_version: str | None = None,
) -> ModelVersion:
    """Record a new model folder as a `candidate` (activate it with `activate_model_version`)."""
    row = ModelVersion(
        version=version,
        folder=str(folder),
        backbone=backbone,
        status="candidate",
        metrics=metrics,
        manifest=manifest,
        parent_version=parent_version,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def get_model_version(session: AsyncSession, version: str) -> ModelVersion | None:
    """The row for this version name (e.g. `v0003`), or None."""
    return await session.scalar(select(ModelVersion).where(ModelVersion.version == version))


async def get_active_model_version(session: AsyncSession) -> ModelVersion | None:
    """The one `active` version, or None before the first activation."""
    return await session.scalar(select(ModelVersion).where(ModelVersion.status == "active"))


async def activate_model_version(
    session: AsyncSession, version: str, *, reason: str | None = None
) -> ModelVersion | None:
    """Make `version` the active one; the previous active becomes `retired`. Returns it.

    Both changes happen in the caller's unit of work, so readers never see zero or two active
    versions (a partial unique index also forbids two). Raises `NotFoundError` for an unknown
    version.
    """
    target = await get_model_version(session, version)
    if target is None:
        raise NotFoundError(f"model version {version} is not registered")
    previous = await get_active_model_version(session)
    if previous is not None and previous.id == target.id:
        return None
    if previous is not None:
        previous.status = "retired"
        previous.reason = f"replaced by {version}"
        await session.flush()  # demote first: the unique index allows one active row at a time
    target.status = "active"
    target.activated_at = utcnow()
    if reason is not None:
        target.reason = reason
    await session.flush()
    return previous


async def set_model_status(
    session: AsyncSession, version: str, status: str, *, reason: str | None = None
) -> ModelVersion:
    """Set `candidate` / `rejected` / `retired` (with a reason). Use `activate_model_version`
    to make a version active; the active one cannot be demoted without a replacement."""
    if status not in MODEL_STATUSES:
        raise ValueError(f"unknown model status {status!r} (expected one of {MODEL_STATUSES})")
    if status == "active":
        await activate_model_version(session, version, reason=reason)
        row = await get_model_version(session, version)
        assert row is not None
        return row
    row = await get_model_version(session, version)
    if row is None:
        raise NotFoundError(f"model version {version} is not registered")
    if row.status == "active":
        raise ValueError(f"{version} is active: activate another version first")
    await session.execute(
        update(ModelVersion)
        .where(ModelVersion.id == row.id)
        .values(status=status, reason=reason if reason is not None else row.reason)
    )
    await session.refresh(row)
    return row


async def list_model_versions(
    session: AsyncSession, limit: int | None = None
) -> list[ModelVersion]:
    """Versions, newest first."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(await session.scalars(stmt))


async def next_version_name(session: AsyncSession) -> str:
    """`v0001`, `v0002`, ...: one past the highest `vNNNN` registered."""
    names = await session.scalars(select(ModelVersion.version))
    numbers = [int(m.group(1)) for n in names if (m := re.fullmatch(r"v(\d+)", n))]
    return f"v{max(numbers, default=0) + 1:04d}"


async def delete_model_version(session: AsyncSession, version: str) -> ModelVersion:
    """Remove a version's row (its folder is the caller's business). The active version cannot
    be deleted (`ValueError`); an unknown one raises `NotFoundError`. Predictions keep the
    version's name, as history."""
    row = await get_model_version(session, version)
    if row is None:
        raise NotFoundError(f"model version {version} is not registered")
    if row.status == "active":
        raise ValueError(f"{version} is active: activate another version first")
    await session.execute(delete(ModelVersion).where(ModelVersion.id == row.id))
    return row
