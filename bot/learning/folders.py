"""Where a registered model version's folder is.

`model_versions.folder` holds the folder relative to MODEL_DIR (`v0003`), so moving DATA_DIR or
MODEL_DIR keeps every version; a folder outside MODEL_DIR (`sentibot models activate PATH`) is
stored as an absolute path. Migration 0005 converted the absolute paths older versions stored.
"""

from __future__ import annotations

from pathlib import Path


def stored_folder(models_path: Path, folder: str | Path) -> str:
    """What to store for `folder`: relative to `models_path` when inside it, else absolute."""
    absolute = Path(folder).resolve()
    root = Path(models_path).resolve()
    if absolute.is_relative_to(root) and absolute != root:
        return absolute.relative_to(root).as_posix()
    return str(absolute)


def folder_path(models_path: Path, stored: str) -> Path:
    """The folder a `model_versions.folder` value names (relative ones under `models_path`)."""
    path = Path(stored)
    return path if path.is_absolute() else Path(models_path) / path
