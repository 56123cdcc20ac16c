"""The model registry, as operators see it: every version (registered rows and the folders in
MODEL_DIR nobody registered), registering a folder, activating a version, deleting one.

`sentibot models list|show|activate|delete|rollback` use it, `train` and `bootstrap` register
what they write as a `candidate`, and the first start registers its first model through it.
Activation and rollback are `ModelVersions`' (the same checks and audit entries as /rollback);
a running bot follows the database's active version (`bot.jobs.sync_model`).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.learning.errors import RegistryError
from bot.learning.folders import folder_path, stored_folder
from bot.learning.results import RollbackOutcome
from bot.learning.versions import ModelVersions, previous_version
from classifier.artifacts import list_model_dirs, read_config
from classifier.card import ModelCard, read_card
from classifier.card_text import EvalSet, describe_eval
from storage import repositories as repo

_NUMBER = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class FolderSummary:
    """What registering a folder stores about it (read from its config and card)."""

    backbone: str
    labels: list[str]
    card: ModelCard


@dataclass(frozen=True)
class VersionEntry:
    """One line of `sentibot models list`."""

    version: str
    status: str  # active | candidate | rejected | retired | unregistered
    folder: Path
    backbone: str | None
    train_rows: int | None
    macro_f1: float | None
    eval_set: EvalSet | None
    created_at: datetime | None = None
    reason: str | None = None
    problem: str | None = None  # why the folder cannot be used (missing, unreadable)

    @property
    def registered(self) -> bool:
        return self.status != "unregistered"


@dataclass(frozen=True)
class DeleteOutcome:
    version: str
    folder: Path
    removed_folder: bool  # False: a folder outside MODEL_DIR, only unregistered
    rollback_to: str | None  # where /rollback (no version) goes now


def read_folder(folder: Path) -> FolderSummary:
    """Config and card of a model folder (`ModelFolderError` naming the bad file)."""
    config = read_config(folder)
    return FolderSummary(str(config["backbone"]), list(config["labels"]), read_card(folder))


async def register_folder(
    session: AsyncSession, models_path: Path, folder: Path, summary: FolderSummary
) -> Any:
    """Register `folder` as a `candidate` named after it (read `summary` beforehand, outside
    the unit of work). A name already taken by another folder is a `RegistryError`."""
    row = await repo.get_model_version(session, folder.name)
    stored = stored_folder(models_path, folder)
    if row is not None:
        if not _same_folder(models_path, row.folder, stored):
            raise RegistryError(
                texts.REGISTRY_NAME_TAKEN.format(version=folder.name, folder=row.folder)
            )
        return row
    return await repo.register_model_version(
        session,
        folder.name,
        folder=stored,
        backbone=summary.backbone,
        metrics=summary.card.summary_metrics(),
        manifest=summary.card.summary_manifest(),
    )


def _same_folder(models_path: Path, stored: str, other: str) -> bool:
    return folder_path(models_path, stored).resolve() == folder_path(models_path, other).resolve()


def _order(name: str) -> tuple[int, int, str]:
    match = _NUMBER.match(name)
    return (0, -int(match.group(1)), name) if match else (1, 0, name)


class ModelRegistry:
    """Every version and folder, for the operator's commands (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        models_path: Path,
        versions: ModelVersions,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.models_path = models_path
        self.versions = versions

    async def entries(self) -> list[VersionEntry]:
        """Registered versions and unregistered folders of MODEL_DIR, newest version first."""
        async with self.sessionmaker() as session:
            rows = await repo.list_model_versions(session)
        entries = [await asyncio.to_thread(self._row_entry, row) for row in rows]
        known = {e.folder.resolve() for e in entries}
        folders = await asyncio.to_thread(list_model_dirs, self.models_path)
        for folder in folders:
            if folder.resolve() not in known and folder.name not in {e.version for e in entries}:
                entries.append(await asyncio.to_thread(_folder_entry, folder))
        return sorted(entries, key=lambda e: _order(e.version))

    def _row_entry(self, row: Any) -> VersionEntry:
        folder = folder_path(self.models_path, row.folder)
        metrics, manifest = row.metrics or {}, row.manifest or {}
        problem = None if folder.is_dir() else texts.REGISTRY_FOLDER_MISSING.format(folder=folder)
        return VersionEntry(
            row.version,
            row.status,
            folder,
            row.backbone,
            _int(manifest.get("rows")),
            _float(metrics.get("macro_f1")),
            describe_eval(metrics, manifest),
            row.created_at,
            row.reason,
            problem,
        )

    async def entry(self, name: str) -> VersionEntry:
        """The version (or MODEL_DIR folder) called `name`; `RegistryError` if there is none."""
        for entry in await self.entries():
            if entry.version == name:
                return entry
        raise RegistryError(texts.REGISTRY_UNKNOWN.format(version=name))

    async def register(self, folder: Path) -> VersionEntry:
        """Register a model folder as a `candidate` (already registered: left as it is)."""
        summary = await asyncio.to_thread(read_folder, folder)
        async with self.sessionmaker.begin() as session:
            await register_folder(session, self.models_path, folder, summary)
        return await self.entry(folder.name)

    async def activate(
        self, who: int | None, target: str, *, force: bool = False
    ) -> RollbackOutcome:
        """Make `target` active: a version name, or a model folder's path (registered first).
        Checked like a rollback (loads, scores the eval split); audited."""
        path = Path(target)
        if not _NUMBER.match(target) and await asyncio.to_thread(path.is_dir):
            name = (await self.register(path)).version
        else:
            entry = await self.entry(target)
            if not entry.registered:
                await self.register(entry.folder)
            name = entry.version
        return await self.versions.activate(who, name, allow_rejected=force)

    async def delete(self, who: int | None, name: str) -> DeleteOutcome:
        """Remove a version: its registry row (audited) and, inside MODEL_DIR, its folder.
        The active version is refused."""
        entry = await self.entry(name)
        if entry.status == "active":
            raise RegistryError(texts.DELETE_ACTIVE.format(version=name))
        async with self.sessionmaker.begin() as session:
            if entry.registered:
                await repo.delete_model_version(session, name)
            await repo.add_audit(session, who, "delete", {"version": name})
            rollback_to = previous_version(await repo.list_model_versions(session))
        inside = stored_folder(self.models_path, entry.folder) != str(entry.folder.resolve())
        if inside and entry.folder.exists():
            await asyncio.to_thread(shutil.rmtree, entry.folder)
        return DeleteOutcome(name, entry.folder, inside, rollback_to)


def _folder_entry(folder: Path) -> VersionEntry:
    """An unregistered folder of MODEL_DIR, with what its card says."""
    try:
        summary = read_folder(folder)
    except Exception as exc:
        return VersionEntry(
            folder.name, "unregistered", folder, None, None, None, None, problem=str(exc)
        )
    metrics, manifest = summary.card.summary_metrics(), summary.card.summary_manifest()
    return VersionEntry(
        folder.name,
        "unregistered",
        folder,
        summary.backbone,
        _int(manifest.get("rows")),
        _float(metrics.get("macro_f1")),
        describe_eval(metrics, manifest),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
