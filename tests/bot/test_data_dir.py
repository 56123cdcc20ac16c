"""Model folders are stored relative to MODEL_DIR: moving DATA_DIR keeps every version."""

from __future__ import annotations

import shutil
import sqlite3

from bot.config import Settings
from bot.runtime import Runtime


async def test_moving_data_dir_keeps_the_active_model(make_settings, tmp_path):
    rt = await Runtime.open(make_settings())  # the first start registers v0001
    await rt.close()
    conn = sqlite3.connect(tmp_path / "data" / "sentibot.db")
    assert conn.execute("SELECT folder FROM model_versions").fetchall() == [("v0001",)]
    conn.close()

    shutil.move(tmp_path / "data", tmp_path / "moved")
    moved = Settings(_env_file=None, data_dir=tmp_path / "moved", device="cpu")
    rt = await Runtime.open(moved)
    try:
        assert rt.predictor.version == "v0001"
        (prediction,) = await rt.predictor.predict(["What a wonderful day :)"])
        assert prediction.label == "positive"
    finally:
        await rt.close()


async def test_an_active_folder_that_is_gone_is_one_clear_line(make_settings, tmp_path):
    import pytest

    from bot.errors import OperatorError

    settings = make_settings()
    rt = await Runtime.open(settings)
    await rt.close()
    shutil.rmtree(settings.models_path / "v0001")
    with pytest.raises(OperatorError) as info:
        await Runtime.open(settings)
    message = str(info.value)
    assert "the active model v0001 does not load" in message and "MODEL_DIR" in message
    assert "\n" not in message
