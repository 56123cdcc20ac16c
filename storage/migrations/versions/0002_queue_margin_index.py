"""Index predictions by (model_version, margin, message_id) for the /label queue.

The queue shows the message whose latest prediction under the active version has the smallest
top-2 margin. With this index the query walks one version's predictions in margin order and
stops at the first eligible message, instead of sorting every prediction on each /label press
(`benchmarks/label_queue.py`, 1M messages with 10k labelled: 1.5 s before, 37 ms after).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_predictions_version_margin",
            ["model_version", "margin", "message_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_version_margin")
