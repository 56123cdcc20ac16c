"""A retrain keeps the active model's backbone: a frozen-BERT model is retrained as frozen BERT
on the same encoder (a tiny random BERT folder: no download)."""

from __future__ import annotations

import json
import re

import pytest

from bot.texts import retrain_summary
from tests.learning.conftest import open_env

pytest.importorskip("transformers")


@pytest.mark.slow
async def test_bert_model_is_retrained_as_bert_on_the_same_encoder(tmp_path, tiny_training_data):
    from classifier.artifacts import save_model
    from classifier.card import read_card
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train
    from tests.bert_fixtures import write_tiny_bert

    texts, labels = tiny_training_data
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})
    encoder = write_tiny_bert(tmp_path / "tiny-bert", words=words)
    recipe = TrainRecipe(backbone="bert", bert_path=str(encoder), bert_mode="frozen", epochs=2)
    quiet = RunSettings(progress=False)
    result = train(texts, labels, ["negative", "neutral", "positive"], recipe, run=quiet)
    active = save_model(result.classifier, tmp_path / "seed" / "v0001", result.card("train"))
    env = await open_env(
        tmp_path / "env",
        active,
        tiny_training_data,
        promotion_tolerance=1.0,
        train_overrides={"epochs": 2, "patience": 2},
    )
    try:
        outcome = await env.learning.retrainer.retrain("admin", 1, force=True)
        assert outcome.status in ("promoted", "rejected"), retrain_summary(outcome)
        folder = env.settings.models_path / outcome.candidate_version
        config = json.loads((folder / "config.json").read_text())
        assert config["backbone"] == "bert" and config["args"]["mode"] == "frozen"
        assert config["args"]["encoder_source"] == str(encoder.resolve())
        card = read_card(folder)
        assert card.postprocess is None and card.recipe["bert_mode"] == "frozen"
        models = await env.learning.versions.list_models()
        assert models[0].backbone == "bert"
        # The frozen encoder's vectors were kept: a second retrain on the same data finds all of
        # them in the feature store, so it has nothing new to write there.
        [store] = env.settings.feature_cache_path.glob("*-cpu.safetensors")
        before = store.stat().st_mtime_ns
        again = await env.learning.retrainer.retrain("admin", 1, force=True)
        assert again.status in ("promoted", "rejected"), retrain_summary(again)
        assert store.stat().st_mtime_ns == before
    finally:
        await env.learning.close()
        await env.predictor.close()
        await env.engine.dispose()
