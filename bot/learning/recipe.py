"""How a candidate is made: its version name, its labels, and its training config.

A retrain reuses the active model's own recipe: the `recipe` in its model card, its backbone
(a BERT model is retrained as BERT on the same encoder), and the bootstrap recipe's
after-training steps when the active model got them (`classifier.bootstrap.postprocess`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.learning.folders import folder_path
from bot.learning.served import ServedModel
from classifier.artifacts import next_version_dir, read_config
from classifier.card import ModelCard, read_card
from storage import repositories as repo


async def next_version(
    sessionmaker: async_sessionmaker[AsyncSession], model_dir: Path
) -> tuple[str, Path]:
    """The next free `vNNNN`, free both in the database and in MODEL_DIR."""
    async with sessionmaker() as session:
        db_name = await repo.next_version_name(session)
    return await asyncio.to_thread(_free_version, model_dir, db_name)


def _free_version(model_dir: Path, db_name: str) -> tuple[str, Path]:
    """The first `vNNNN` from the database's next name on that has no folder in `model_dir`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    dir_name = next_version_dir(model_dir).name
    number = max(int(db_name[1:]), int(dir_name[1:]))
    while (model_dir / f"v{number:04d}").exists():
        number += 1
    return f"v{number:04d}", (model_dir / f"v{number:04d}").resolve()


async def label_list(served: ServedModel, active: Any) -> list[str]:
    """The candidate's labels: the serving model's, else the active folder's, else the defaults."""
    if served.predictor is None and active is not None:
        config = await asyncio.to_thread(read_config, served.folder(active))
        return list(config["labels"])
    return served.labels


async def train_config(
    active: Any, backbone: str | None, settings: Settings, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The active model's own training recipe (same backbone, same encoder), plus overrides.

    `backbone` (from `sentibot retrain --backbone`) switches backbone: then the recipe
    starts from `TrainRecipe`'s defaults instead of the active model's.
    """
    folder = None if active is None else folder_path(settings.models_path, active.folder)
    config, model_config, card = await _read_active(folder)
    current = model_config.get("backbone") or config.get("backbone")
    current = current or (active.backbone if active is not None else "embedding")
    if backbone is not None and backbone != current:
        config, model_config, current = {}, {}, backbone
    config["backbone"] = current
    if current == "bert":
        _add_bert_fields(config, model_config.get("args") or {}, settings)
    config.update(overrides)
    config["postprocess"] = postprocessed(card) and current == model_config.get("backbone")
    return config


async def _read_active(
    folder: Path | None,
) -> tuple[dict[str, Any], dict[str, Any], ModelCard | None]:
    """(the recipe from its card, its config.json, its card); empty or None where unreadable."""
    config: dict[str, Any] = {}
    model_config: dict[str, Any] = {}
    card = None
    if folder is not None:
        with contextlib.suppress(Exception):
            card = await asyncio.to_thread(read_card, folder)
            config.update(card.recipe)
        with contextlib.suppress(Exception):
            model_config = await asyncio.to_thread(read_config, folder)
    return config, model_config, card


def _add_bert_fields(config: dict[str, Any], args: dict[str, Any], settings: Settings) -> None:
    """Keep the active model's encoder and mode; BERT_PATH / BERT_MODE where it has none."""
    config["bert_path"] = (
        config.get("bert_path") or args.get("encoder_source") or _str_or_none(settings.bert_path)
    )
    config["bert_mode"] = config.get("bert_mode") or args.get("mode") or settings.bert_mode


def postprocessed(card: ModelCard | None) -> bool:
    """Whether the active model got the bootstrap recipe's after-training steps.

    The bootstrap build writes each VADER lexicon word's valence into its embedding row,
    calibrates a temperature and shifts the label prior (`classifier.bootstrap.postprocess`);
    a retrain of such a model does the same, so it keeps that knowledge. The card says so.
    """
    return card is not None and card.postprocess is not None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
