"""Fixtures for the service / runtime / console tests: real SQLite file, tiny real model."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings


@pytest.fixture
def make_settings(tmp_path: Path, tiny_model_dir: Path) -> Callable[..., Settings]:
    """Settings on a fresh DATA_DIR whose MODEL_DIR holds a copy of the tiny model (v0001)."""

    def make(**overrides: Any) -> Settings:
        model_dir = tmp_path / "data" / "models"
        if not model_dir.exists():
            shutil.copytree(tiny_model_dir, model_dir / tiny_model_dir.name)
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "model_dir": model_dir,
            "device": "cpu",
            "admin_ids": [],
            "telegram_bot_token": None,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def runtime(make_settings) -> AsyncIterator[Any]:
    from bot.runtime import Runtime

    rt = await Runtime.open(make_settings())
    try:
        yield rt
    finally:
        await rt.close()
