"""Store `model_versions.folder` relative to MODEL_DIR.

Older versions stored absolute paths, so moving DATA_DIR (or MODEL_DIR) broke start-up: the
active version's folder "did not exist" though it was there. From here on the bot stores
`v0003` for `MODEL_DIR/v0003` (and an absolute path only for a folder outside MODEL_DIR).

This migration needs MODEL_DIR: `storage.db.upgrade_database(url, model_dir=...)` passes it
(the bot and the CLI always do). An absolute folder inside MODEL_DIR becomes relative; so does
one whose own folder is gone while `MODEL_DIR/<version>` exists (MODEL_DIR moved before this
upgrade). Anything else stays absolute, which keeps working. Without MODEL_DIR (a bare
`alembic upgrade`) nothing changes. Downgrade makes relative folders absolute again under
MODEL_DIR (the older code reads only absolute ones).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("version", sa.String),
    sa.column("folder", sa.String),
)


def _model_dir() -> Path | None:
    value = context.config.attributes.get("model_dir")
    return Path(value).resolve() if value else None


def relative_folder(folder: str, version: str, root: Path) -> str | None:
    """The relative form of an absolute `folder` under `root`, or None to leave it."""
    path = Path(folder)
    if not path.is_absolute():
        return None
    resolved = path.resolve()
    if resolved.is_relative_to(root) and resolved != root:
        return resolved.relative_to(root).as_posix()
    if path.name == version and not path.exists() and (root / version).is_dir():
        return version  # MODEL_DIR moved before this upgrade
    return None


def _rewrite(convert) -> None:
    root = _model_dir()
    if root is None:
        return
    bind = op.get_bind()
    rows = bind.execute(sa.select(_versions.c.id, _versions.c.version, _versions.c.folder))
    for row_id, version, folder in rows.all():
        new = convert(folder, version, root)
        if new is not None and new != folder:
            bind.execute(_versions.update().where(_versions.c.id == row_id).values(folder=new))


def upgrade() -> None:
    _rewrite(relative_folder)


def downgrade() -> None:
    _rewrite(
        lambda folder, _version, root: None if Path(folder).is_absolute() else str(root / folder)
    )
