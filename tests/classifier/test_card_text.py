"""The card in words: which rows a figure is on (`describe_eval`), the README of a model
folder (`render_readme`), fields it does not know included."""

from __future__ import annotations

import dataclasses
from typing import Any

from classifier.card import ModelCard, TrainingLog
from classifier.card_text import MIN_RELIABLE_ROWS, card_eval_set, describe_eval, render_readme

REPORT = {
    "accuracy": 0.7,
    "macro_f1": 0.65,
    "labels": ["negative", "positive"],
    "per_class": {
        "negative": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 40},
        "positive": {"precision": 0.7, "recall": 0.8, "f1": 0.75, "support": 60},
    },
    "confusion": [[24, 16], [12, 48]],
    "n": 100,
}


def test_describe_eval_names_the_rows_and_their_sources():
    boot = describe_eval({"measured_on": "eval", "n": 1085}, {"kind": "bootstrap"})
    assert (boot.name, boot.n, boot.bootstrap_rows, boot.user_rows) == (
        "bootstrap eval slice",
        1085,
        1085,
        0,
    )
    retrain = describe_eval(
        {"measured_on": "eval", "n": 40},
        {
            "kind": "retrain",
            "eval": {"rows_per_source": {"bootstrap": 36, "queue": 4}, "sha256": "f00"},
        },
    )
    assert (retrain.name, retrain.user_rows, retrain.key) == ("eval split", 4, "f00")
    assert (
        not retrain.reliable and retrain.short() == "eval split (40 rows, 4 from users, unreliable)"
    )
    dev = describe_eval({"measured_on": "dev", "n": 200}, {"dev_source": "split", "sha256": "a"})
    assert dev.name == "dev split of the training data" and dev.reliable
    assert (
        describe_eval({"measured_on": "dev", "n": 200}, {"dev_source": "train"}).reliable is False
    )
    assert describe_eval({}, {}) is None
    assert MIN_RELIABLE_ROWS == 50


def test_readme_has_every_section_and_the_eval_set():
    card = ModelCard(
        "train",
        recipe={"backbone": "embedding", "epochs": 5, "patience": 2},
        data={
            "rows": 1000,
            "rows_per_label": {"negative": 400, "positive": 600},
            "dev_rows": 100,
            "dev_source": "split",
            "sha256": "x",
        },
        dev=REPORT,
        training=TrainingLog(3, 1, 1.5, [{"epoch": 1, "dev_macro_f1": 0.65}]),
        origin={"data": "reviews.csv"},
    )
    text = render_readme(card, version="v0004", labels=["negative", "positive"])
    assert text.startswith("# Sentiment model v0004\n")
    assert "Scoring the sentiment (negative, positive)" in text
    assert "- file: `reviews.csv`" in text
    assert "Measured on the dev split of the training data (100 rows)." in text
    assert "| positive | 0.700 | 0.800 | 0.750 | 60 |" in text
    assert "stopped early at epoch 3 of 5 (best: 1)" in text
    assert "Unreliable" not in text
    assert card_eval_set(card).n == 100


def test_readme_renders_fields_it_does_not_know():
    """Other workstreams add card fields (calibration, figures per eval source, a learning
    curve): the README shows them without a change to the renderer."""
    newer = dataclasses.make_dataclass(
        "NewerCard",
        [("calibration", dict[str, Any], dataclasses.field(default_factory=dict))],
        bases=(ModelCard,),
    )
    card = newer("retrain", eval=REPORT, calibration={"ece": 0.031, "bins": 10})
    text = render_readme(card)
    assert "## Other fields" in text and '- calibration: {"bins": 10, "ece": 0.031}' in text
