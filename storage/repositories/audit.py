"""The audit log of admin actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog, utcnow


async def add_audit(
    session: AsyncSession,
    user_id: int | None,
    action: str,
    arguments: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one entry (e.g. action `rollback`, arguments `{"from": "v0004", "to": "v0003"}`)."""
    row = AuditLog(user_id=user_id, action=action, arguments=arguments, created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


async def list_audit(
    session: AsyncSession, *, limit: int = 50, action: str | None = None
) -> list[AuditLog]:
    """Entries, newest first."""
    stmt = select(AuditLog)
    if action is not None:
        stmt = stmt.where(AuditLog.action == action)
    return list(await session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit)))
