"""Forgetting a person: everything about them goes, except the opt-out flag if they set it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AnnotatorState,
    AuditLog,
    Chat,
    Label,
    LabelHistory,
    LabelReview,
    Message,
    Prediction,
    QueueClaim,
    QueueSkip,
    TrainingRun,
    User,
)


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """How many rows `forget_user` removed."""

    messages: int
    labels: int
    skips: int
    audit_entries: int  # deleted (theirs) or redacted (mentioning them)
    opted_out: bool  # the user row remains (id + flag only) when True


async def forget_user(
    session: AsyncSession, user_id: int, *, opt_out: bool | None = None
) -> ForgetReport:
    """Delete a person's messages (with their predictions and everyone's labels on them), their
    labels and label history, queue skips, private chat, audit entries by them or mentioning
    their id or text (those values are redacted). Their `users` row is deleted unless they stay
    opted out (`opt_out=None` keeps the current flag; True/False sets it): then it keeps only
    `id` and `opted_out`.
    """
    own = select(Message.id).where(
        or_(Message.user_id == user_id, Message.chat_id == user_id)  # private chat id == user id
    )
    texts = set(await session.scalars(select(Message.text).where(Message.id.in_(own))))
    await session.execute(delete(LabelHistory).where(LabelHistory.message_id.in_(own)))
    await session.execute(delete(LabelHistory).where(LabelHistory.user_id == user_id))
    labels = (await session.execute(delete(Label).where(Label.user_id == user_id))).rowcount
    skips = (await session.execute(delete(QueueSkip).where(QueueSkip.user_id == user_id))).rowcount
    # What the queue offered them and their annotator state go; review decisions stay, unsigned.
    await session.execute(delete(QueueClaim).where(QueueClaim.user_id == user_id))
    await session.execute(delete(AnnotatorState).where(AnnotatorState.source == str(user_id)))
    await session.execute(
        update(LabelReview).where(LabelReview.decided_by == user_id).values(decided_by=None)
    )
    # Predictions, other people's labels and skips on these messages go by ON DELETE CASCADE;
    # they are deleted explicitly too, so a backend without enforced foreign keys is safe.
    await session.execute(delete(Prediction).where(Prediction.message_id.in_(own)))
    await session.execute(delete(Label).where(Label.message_id.in_(own)))
    await session.execute(delete(QueueSkip).where(QueueSkip.message_id.in_(own)))
    messages = (await session.execute(delete(Message).where(Message.id.in_(own)))).rowcount
    await session.execute(delete(Chat).where(Chat.id == user_id, Chat.type == "private"))
    audit = await _scrub_audit(session, user_id, texts)
    await session.execute(
        update(TrainingRun).where(TrainingRun.requested_by == user_id).values(requested_by=None)
    )
    flagged = bool(await session.scalar(select(User.opted_out).where(User.id == user_id)))
    keep = flagged if opt_out is None else opt_out
    if keep:
        if await session.scalar(select(User.id).where(User.id == user_id)) is None:
            # Core insert: an explicit NULL first_seen is kept (the ORM would apply the default).
            await session.execute(insert(User.__table__).values(id=user_id, first_seen=None))
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(username=None, first_name=None, first_seen=None, opted_out=True)
        )
    else:
        await session.execute(delete(User).where(User.id == user_id))
    await session.flush()
    return ForgetReport(messages or 0, labels or 0, skips or 0, audit, keep)


REDACTED = "[forgotten]"


def _redact(value: Any, user_id: int, texts: set[str]) -> Any:
    """`value` with the person's id and message texts replaced by REDACTED."""
    if isinstance(value, dict):
        return {k: _redact(v, user_id, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, user_id, texts) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value == user_id:
        return REDACTED
    if isinstance(value, str):
        if value == str(user_id) or value in texts:
            return REDACTED
        for text in texts:
            if len(text) >= 4 and text in value:  # short texts would mangle unrelated words
                value = value.replace(text, REDACTED)
    return value


async def _scrub_audit(session: AsyncSession, user_id: int, texts: set[str]) -> int:
    """Delete audit entries by this person; redact their id and texts in other entries."""
    removed = (await session.execute(delete(AuditLog).where(AuditLog.user_id == user_id))).rowcount
    # The audit log is small (admin actions), so arguments are checked in Python.
    changed = 0
    for row_id, arguments in await session.execute(select(AuditLog.id, AuditLog.arguments)):
        if arguments is None:
            continue
        clean = _redact(arguments, user_id, texts)
        if clean != arguments:
            changed += 1
            await session.execute(
                update(AuditLog).where(AuditLog.id == row_id).values(arguments=clean)
            )
    return (removed or 0) + changed
