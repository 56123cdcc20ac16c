"""A new operator's day with the bot running: train a model from a CSV, see it in `models
list`, activate it, watch the bot answer with it, roll back: each step one command."""

from __future__ import annotations

import asyncio
import csv

from sqlalchemy import select

from bot import cli, jobs
from storage.models import Message, Prediction
from tests.e2e.conftest import ALICE, eventually


async def _scored_by(bot, text: str) -> str:
    reply = await bot.say(ALICE, text)
    assert "·" in reply.text
    async with bot.runtime.sessionmaker() as session:
        return await session.scalar(
            select(Prediction.model_version)
            .join(Message, Message.id == Prediction.message_id)
            .where(Message.text == text)
            .order_by(Prediction.id.desc())
            .limit(1)
        )


async def test_train_activate_and_roll_back_while_the_bot_runs(
    start_bot, tmp_path, tiny_training_data, monkeypatch, capsys
):
    monkeypatch.setattr(jobs, "SYNC_INTERVAL_S", 0.2)  # production polls every minute
    data = tmp_path / "mine.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *zip(*tiny_training_data, strict=True)])

    async def sentibot(*args: str) -> str:
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    async with start_bot() as bot:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("DATA_DIR", str(bot.settings.data_dir))
        monkeypatch.setenv("MODEL_DIR", str(bot.settings.models_path))
        monkeypatch.setenv("DEVICE", "cpu")
        assert await _scored_by(bot, "What a wonderful day :)") == "v0001"

        out = await sentibot("train", "--data", str(data), "--epochs", "3", "--seed", "5")
        assert "registered as candidate v0002" in out
        assert "v0002    candidate" in await sentibot("models", "list")
        assert "v0001 → v0002 is now active" in await sentibot("models", "activate", "v0002")

        async def serving(version: str) -> bool:
            return bot.runtime.predictor.version == version

        await eventually(lambda: serving("v0002"))
        assert await _scored_by(bot, "Terrible food, rude staff") == "v0002"

        assert "v0002 → v0001" in await sentibot("models", "rollback")
        await eventually(lambda: serving("v0001"))
        assert await _scored_by(bot, "The store opens at nine") == "v0001"
