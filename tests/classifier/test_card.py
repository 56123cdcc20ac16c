"""The model card: round trip, the one reader, older `metrics.json` shapes migrated on read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifier.artifacts import load_model, save_model
from classifier.card import CARD_VERSION, ModelCard, TrainingLog, read_card
from classifier.errors import ModelFolderError

LEGACY_CARDS = Path(__file__).resolve().parents[1] / "legacy_cards"


def _legacy(name: str) -> dict:
    """A `metrics.json` written by an older sentibot (see tests/legacy_cards/)."""
    return json.loads((LEGACY_CARDS / f"{name}.json").read_text())


@pytest.fixture
def folder_with(tiny_model_dir, tmp_path):
    """A model folder whose `metrics.json` is replaced by the given dict."""

    def make(card: dict, name: str = "v0001") -> Path:
        folder = shutil.copytree(tiny_model_dir, tmp_path / name)
        (folder / "metrics.json").write_text(json.dumps(card))
        return folder

    return make


def test_a_saved_card_reads_back_equal(tiny_model_dir, tmp_path):
    card = ModelCard(
        kind="retrain",
        recipe={"epochs": 3},
        data={"rows": 10},
        eval={"macro_f1": 0.5, "accuracy": 0.6, "n": 4},
        eval_split="the eval split",
        active_eval={"macro_f1": 0.4, "accuracy": 0.5, "n": 4},
        training=TrainingLog(epochs_run=3, best_epoch=2, seconds=1.5, dev_curve=[]),
        postprocess={"temperature": 2.0},
        origin={"run_id": 7},
    )
    out = save_model(load_model(tiny_model_dir), tmp_path / "v0002", card)
    back = read_card(out)
    assert back.versions and back == ModelCard(**{**card.__dict__, "versions": back.versions})
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["card_version"] == CARD_VERSION and stored["training"]["best_epoch"] == 2


def test_headline_and_summaries():
    report = {"macro_f1": 0.7, "accuracy": 0.8, "n": 10}
    card = ModelCard("train", recipe={"lr": 0.1}, data={"rows": 5}, dev=report)
    assert card.headline() == ("dev", report)
    summary = card.summary_metrics()
    assert (summary["measured_on"], summary["macro_f1"], summary["n"]) == ("dev", 0.7, 10)
    assert card.summary_manifest() == {
        "card_version": CARD_VERSION,
        "kind": "train",
        "rows": 5,
        "recipe": {"lr": 0.1},
    }
    better = ModelCard("bootstrap", eval={**report, "macro_f1": 0.9}, dev=report)
    assert better.summary_metrics()["macro_f1"] == 0.9  # eval figures win over dev
    assert ModelCard("train").summary_metrics()["measured_on"] is None


# --- older cards ----------------------------------------------------------------------------------
def test_old_bootstrap_card(folder_with):
    old = _legacy("bootstrap")
    card = read_card(folder_with(old))
    assert card.kind == "bootstrap" and card.card_version == CARD_VERSION
    assert card.eval == old["metrics"] and card.dev == old["dev"]
    assert card.eval_split == old["eval_split"]
    boot = old["bootstrap"]
    assert card.postprocess == {
        k: boot[k]
        for k in ("lexicon_prior_rows", "lexicon_prior_strength", "temperature", "label_prior")
    }
    assert card.training == TrainingLog(
        epochs_run=boot["epochs_run"], best_epoch=boot["best_epoch"], seconds=boot["train_seconds"]
    )
    assert card.origin == {"bootstrap_recipe": boot["recipe"], "sources": boot["sources"]}
    assert card.recipe["seed"] == boot["seed"] and card.recipe["negation_scope"] == 2
    assert "device" not in card.recipe and "train_config" not in card.data
    assert card.data["bootstrap"] == old["manifest"]["bootstrap"]
    assert card.versions == old["versions"]


@pytest.mark.parametrize("name", ["retrain", "retrain_postprocessed"])
def test_old_retrain_card(folder_with, name):
    old = _legacy(name)
    card = read_card(folder_with(old))
    assert card.kind == "retrain"
    assert card.eval == old["metrics"]["eval"] and card.dev == old["metrics"]["dev"]
    assert card.active_eval == old["metrics"]["active_eval"]
    assert card.training.epochs_run == old["metrics"]["epochs_run"]
    assert card.postprocess == old.get("postprocess")
    assert card.origin == {
        k: old[k] for k in ("version", "parent", "trigger", "requested_by", "run_id")
    }
    assert card.data["train"] == old["manifest"]["train"]
    assert card.data["eval"]["sha256"] == old["manifest"]["eval"]["sha256"]
    assert card.recipe["epochs"] == old["manifest"]["train_config"]["epochs"]
    assert not {"device", "num_threads", "feature_cache"} & set(card.recipe)


@pytest.mark.parametrize("name", ["cli_train", "library"])
def test_old_train_card(folder_with, name):
    old = _legacy(name)
    card = read_card(folder_with(old))
    assert card.kind == "train" and card.eval is None
    assert card.dev == old["metrics"] and card.headline() == ("dev", old["metrics"])
    assert card.origin == old.get("source", {})
    assert card.data["rows"] == old["manifest"]["rows"] and card.postprocess is None


def test_old_card_with_no_figures(folder_with):
    # benchmarks saved `metrics={}`; the library accepted anything there
    card = read_card(folder_with({"metrics": {}, "manifest": {}, "versions": {}, "note": "x"}))
    assert card.kind == "train" and card.headline() is None and card.origin == {"note": "x"}


@pytest.mark.parametrize("name", ["bootstrap", "cli_train", "retrain"])
def test_old_folders_still_load_and_predict(folder_with, tiny_model_dir, name):
    folder = folder_with(_legacy(name))
    texts = ["I love it", "The report has ten pages"]
    np.testing.assert_array_equal(
        load_model(folder).predict_proba(texts), load_model(tiny_model_dir).predict_proba(texts)
    )


# --- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("card", "match"),
    [
        ({"card_version": CARD_VERSION + 1, "kind": "train"}, "newer sentibot"),
        ({"card_version": "one", "kind": "train"}, "whole number"),
        ({"manifest": {}}, "neither a model card nor an older metrics file"),
        ([1, 2], "expected a JSON object"),
        ({"card_version": CARD_VERSION, "kind": "train", "eval": [0.5]}, "eval must be"),
        ({"card_version": CARD_VERSION, "kind": "train", "recipe": "fast"}, "recipe must be"),
        ({"card_version": CARD_VERSION}, "not a valid model card"),
    ],
)
def test_bad_cards_are_refused_naming_the_file(folder_with, card, match):
    folder = folder_with(card)
    with pytest.raises(ModelFolderError, match=match) as info:
        read_card(folder)
    assert str(folder / "metrics.json") in str(info.value)
    with pytest.raises(ModelFolderError):
        load_model(folder)


def test_fields_a_newer_card_adds_are_left_out(folder_with):
    card = {"card_version": CARD_VERSION, "kind": "train", "calibration": {"ece": 0.1}}
    assert read_card(folder_with(card)) == ModelCard("train")
