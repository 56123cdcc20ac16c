"""Labels you can trust: queue claims and admission, annotator states, label reviews.

- `queue_claims`: what the /label queue offered whom, until when (at most LABELS_PER_ITEM
  people hold an item at once, also across worker processes; only a claimed item may be
  labelled through the queue's buttons).
- `queue_entries`: the queue's admission of each message (`open`, or `held`: over
  QUEUE_MAX_PER_AUTHOR_HOUR, or a duplicate of an open item's normalized text).
- `annotator_states`: an admin's exclusion of a label source, and the "looks unreliable" flag.
- `label_reviews`: labels the data contradicts, found after a retrain, for /review.

Revision ID: 0009
Revises: 0003
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _message_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["message_id"],
        ["messages.id"],
        name=op.f(f"fk_{table}_message_id_messages"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "queue_claims",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("round_version", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _message_fk("queue_claims"),
        sa.PrimaryKeyConstraint("message_id", "user_id", name=op.f("pk_queue_claims")),
    )
    with op.batch_alter_table("queue_claims", schema=None) as batch_op:
        batch_op.create_index("ix_queue_claims_user", ["user_id", "expires_at"], unique=False)
        batch_op.create_index("ix_queue_claims_round", ["round_version"], unique=False)

    op.create_table(
        "queue_entries",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("text_key", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _message_fk("queue_entries"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_queue_entries")),
    )
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.create_index("ix_queue_entries_text_key", ["text_key"], unique=False)
        batch_op.create_index("ix_queue_entries_author", ["author_id", "received_at"], unique=False)

    op.create_table(
        "annotator_states",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("excluded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("changed_by", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reliability", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_annotator_states")),
    )

    op.create_table(
        "label_reviews",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("given_label", sa.String(length=32), nullable=False),
        sa.Column("suggested_label", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_label", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        _message_fk("label_reviews"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_label_reviews")),
    )
    with op.batch_alter_table("label_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_label_reviews_status_score", ["status", "score"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("label_reviews", ["ix_label_reviews_status_score"]),
        ("annotator_states", []),
        ("queue_entries", ["ix_queue_entries_author", "ix_queue_entries_text_key"]),
        ("queue_claims", ["ix_queue_claims_round", "ix_queue_claims_user"]),
    ):
        if indexes:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for name in indexes:
                    batch_op.drop_index(name)
        op.drop_table(table)
