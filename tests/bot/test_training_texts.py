"""What `train` and `bootstrap` say about their run: early stopping, and one consistent set of
numbers for the bootstrap build (epochs on the raw model, what post-processing changed, the
held-out eval slice)."""

from __future__ import annotations

from bot import texts
from classifier.card import ModelCard, TrainingLog

CURVE = [{"epoch": i, "dev_macro_f1": f} for i, f in enumerate([0.60, 0.665, 0.65, 0.64], 1)]


def report(f1: float, n: int = 1085) -> dict:
    return {"macro_f1": f1, "accuracy": f1 + 0.02, "n": n}


def test_early_stopping_is_said():
    card = ModelCard(
        "train", recipe={"epochs": 5, "patience": 2}, training=TrainingLog(4, 2, 3.0, CURVE)
    )
    assert texts.epochs_summary(card) == (
        "stopped early at epoch 4 of 5 (best: 2, dev macro-F1 0.665): no improvement for 2 "
        "epochs; the best epoch's weights are kept"
    )
    full = ModelCard("train", recipe={"epochs": 4}, training=TrainingLog(4, 2, 3.0, CURVE))
    assert texts.epochs_summary(full) == "ran all 4 epochs (best: 2, dev macro-F1 0.665)"


def test_bootstrap_numbers_are_one_consistent_set():
    card = ModelCard(
        "bootstrap",
        recipe={"epochs": 10, "patience": 2},
        eval=report(0.613),
        dev=report(0.641, 3037),
        training=TrainingLog(4, 2, 50.0, CURVE),
        postprocess={
            "lexicon_prior_rows": 7000,
            "temperature": 2.25,
            "label_prior": {"negative": -0.14, "neutral": 0.06, "positive": 0.06},
            "before": {"dev_macro_f1": 0.665, "eval_macro_f1": 0.62},
        },
    )
    lines = texts.bootstrap_summary(card)
    assert lines[0].startswith("stopped early at epoch 4 of 10 (best: 2, dev macro-F1 0.665)")
    joined = "\n".join(lines)
    assert "dev macro-F1 0.665 → 0.641, eval slice 0.620 → 0.613" in joined
    assert "confidences only, labels unchanged" in joined
    assert lines[-1].startswith(
        "held-out eval slice (1,085 tweets never trained on): macro-F1 0.613"
    )
