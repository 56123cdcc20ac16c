"""ORM tables. Names are a contract: admins query the file with `sqlite3` (see docs/schema.md).

Telegram ids are stored as-is: `users.id` is the Telegram user id, `chats.id` the Telegram chat id,
`messages.user_id` / `labels.user_id` hold Telegram user ids. Every relationship is declared
`lazy="raise"`: async code must never lazy-load, so a forgotten eager load fails loudly in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Reserved ids (documented in docs/schema.md). Telegram user ids are positive and group/channel
# chat ids negative, so 0 never collides with a real Telegram id.
CONSOLE_CHAT_ID = 0  # `sentibot chat` stores its lines in chat 0 (type "console")
CONSOLE_USER_ID = 0  # ... written by user 0 (username "console")
# `sentibot import --unlabelled` stores its texts in this chat (type "import"): -2**53 is outside
# Telegram's ids, which have at most 52 significant bits.
IMPORT_CHAT_ID = -(2**53)

LABEL_SOURCES = ("inline", "queue", "import")
MODEL_STATUSES = ("candidate", "active", "rejected", "retired")
RUN_TRIGGERS = ("schedule", "admin", "cli")
RUN_STATUSES = ("running", "succeeded", "failed")

# Deterministic constraint names, so Alembic batch migrations on SQLite can find them later.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ISO text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares datetimes as text: store them naive so every row has the same format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """A Telegram user. After `forget_user` only `id` and `opted_out` remain (if opted out)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Chat(Base):
    """A Telegram chat (private / group / supergroup / channel), or the console (id 0)."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """A text message. Imported rows have no chat, user or Telegram id."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("chat_id", "telegram_message_id", name="uq_messages_chat_telegram"),
        Index("ix_messages_received_at", "received_at"),
        Index("ix_messages_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("chats.id", ondelete="CASCADE")
    )
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE")
    )
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Prediction(Base):
    """One scoring of a message by one model version (an edited message gets a new row)."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_message_version", "message_id", "model_version"),
        # The /label queue walks one version's predictions in margin order (migration 0002).
        Index("ix_predictions_version_margin", "model_version", "margin", "message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("messages.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    # top-1 minus top-2 probability: the queue's uncertainty order, precomputed so it can be sorted.
    margin: Mapped[float] = mapped_column(Float)
    probs: Mapped[dict[str, float]] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Label(Base):
    """A person's current label for a message (one row per message and person)."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id", name="uq_labels_message_user"),
        Index("ix_labels_user_updated", "user_id", "updated_at"),
        Index("ix_labels_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("messages.id", ondelete="CASCADE"))
    # NULL for `import` labels (nobody in Telegram gave them).
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE")
    )
    label: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelHistory(Base):
    """Every label change (set, replace, undo): the audit trail behind `labels`."""

    __tablename__ = "label_history"
    __table_args__ = (Index("ix_label_history_message", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))  # set | replace | undo
    label: Mapped[str | None] = mapped_column(String(32))  # the new label (NULL on undo)
    previous_label: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueSkip(Base):
    """A person skipped a message in the /label queue: it never comes back to them."""

    __tablename__ = "queue_skips"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersion(Base):
    """A trained model folder and its fate. At most one row has status `active` (unique index)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    folder: Mapped[str] = mapped_column(String(1024))
    backbone: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    parent_version: Mapped[str | None] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)  # why rejected / retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrainingRun(Base):
    """One retraining attempt, from trigger to decision."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | admin | cli
    requested_by: Mapped[int | None] = mapped_column(BigInteger)  # Telegram user id (admin)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    candidate_version: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(16))  # promoted | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # rows used, metrics compared


class AuditLog(Base):
    """Admin actions: who did what, with which arguments, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- labels you can trust (migration 0009) -------------------------------------------------------
class QueueClaim(Base):
    """A /label item the queue offered a person. Live (before `expires_at`) claims bound how many
    people hold an item at once, across processes; only a claimed item may be labelled through
    the queue's buttons. Kept after release (expires_at set to the release time): `round_version`
    (the active model then) tells what was shown in this round."""

    __tablename__ = "queue_claims"
    __table_args__ = (
        Index("ix_queue_claims_user", "user_id", "expires_at"),
        Index("ix_queue_claims_round", "round_version"),
    )

    message_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    round_version: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QueueEntry(Base):
    """A message the queue has looked at: `open`, or `held` out of it (`reason`: `author_hour`,
    over QUEUE_MAX_PER_AUTHOR_HOUR; `duplicate`, the same normalized text as an open entry).
    Messages newer than the newest entry have not been looked at yet and count as open."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        Index("ix_queue_entries_text_key", "text_key"),
        Index("ix_queue_entries_author", "author_id", "received_at"),
    )

    message_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(8))  # open | held
    reason: Mapped[str | None] = mapped_column(String(16))
    text_key: Mapped[str] = mapped_column(String(32))
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AnnotatorState(Base):
    """An admin's exclusion of a label source, and when the admins were told it looks unreliable.

    `source`: a Telegram user id as text, `inline` (inline buttons of people who are not
    annotators) or `import`."""

    __tablename__ = "annotator_states"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    changed_by: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reliability: Mapped[float | None] = mapped_column(Float)  # the estimate when flagged


class LabelReview(Base):
    """A label the data contradicts (confident learning after a retrain), for /review.

    `status`: `pending` (down-weighted in training until reviewed), `kept` or `changed`;
    `decided_label` is then the message's label."""

    __tablename__ = "label_reviews"
    __table_args__ = (Index("ix_label_reviews_status_score", "status", "score"),)

    message_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    given_label: Mapped[str] = mapped_column(String(32))
    suggested_label: Mapped[str] = mapped_column(String(32))
    # Out-of-fold probability of the given label: the lower, the more suspicious.
    score: Mapped[float] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_label: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
