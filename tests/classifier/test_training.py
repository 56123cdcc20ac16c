"""Training loop: determinism, the seed example, weights, dev sets, callbacks."""

import numpy as np
import pytest
import torch

from classifier.recipe import RunSettings, TrainRecipe
from classifier.training import train
from classifier.training_data import data_manifest

FAST = dict(epochs=4, embedding_dim=16, bigram_buckets=64)
QUIET = RunSettings(progress=False)
SEED_TEXTS = ["This is a good movie.", "The plot is confusing.", "I love the soundtrack."]
SEED_LABELS = ["1", "0", "1"]


def _weights(result):
    return {k: v.clone() for k, v in result.classifier.module.state_dict().items()}


def test_seed_example_binary():
    result = train(SEED_TEXTS, SEED_LABELS, ["0", "1"], TrainRecipe(**FAST), run=QUIET)
    probs = result.classifier.predict_proba(["The acting is terrible."])
    assert probs.shape == (1, 2)
    assert np.isclose(probs.sum(), 1.0)
    assert result.classifier.predict(["The acting is terrible."])[0] in {"0", "1"}
    assert result.manifest["dev_source"] == "train"  # 3 rows: no dev split possible


def test_same_seed_same_weights(tiny_training_data):
    texts, labels = tiny_training_data
    names = ["negative", "neutral", "positive"]
    a = train(texts, labels, names, TrainRecipe(seed=7, **FAST), run=QUIET)
    b = train(texts, labels, names, TrainRecipe(seed=7, **FAST), run=QUIET)
    c = train(texts, labels, names, TrainRecipe(seed=8, **FAST), run=QUIET)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa if wa[k].shape == wc[k].shape)


def test_training_does_not_touch_global_rng(tiny_training_data):
    texts, labels = tiny_training_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(texts, labels, ["negative", "neutral", "positive"], TrainRecipe(**FAST), run=QUIET)
    assert torch.equal(torch.rand(3), expected)


def test_learns_the_tiny_data(tiny_model_dir, tiny_training_data):
    from classifier.artifacts import load_model

    texts, labels = tiny_training_data
    classifier = load_model(tiny_model_dir)
    accuracy = np.mean([p == g for p, g in zip(classifier.predict(texts), labels, strict=True)])
    assert accuracy > 0.9


def test_on_epoch_callback_and_early_stopping(tiny_training_data):
    texts, labels = tiny_training_data
    calls = []
    recipe = TrainRecipe(
        epochs=40, patience=1, dev_fraction=0.25, embedding_dim=8, bigram_buckets=0
    )
    result = train(
        texts,
        labels,
        ["negative", "neutral", "positive"],
        recipe,
        run=QUIET,
        on_epoch=lambda e, n, f1: calls.append((e, n, f1)),
    )
    assert [c[0] for c in calls] == list(range(1, result.epochs_run + 1))
    assert all(n == 40 and 0.0 <= f1 <= 1.0 for _, n, f1 in calls)
    assert result.epochs_run < 40  # stopped early: macro-F1 plateaus on this tiny dev set
    assert result.history[result.best_epoch - 1] == max(result.history)
    assert result.manifest["dev_source"] == "split" and result.manifest["dev_rows"] == 9
    card = result.card("train")
    assert card.training.epochs_run == result.epochs_run
    assert card.training.best_epoch == result.best_epoch
    assert [e["dev_macro_f1"] for e in card.training.dev_curve] == result.history
    assert card.dev == result.dev_report.to_dict() and card.eval is None


def test_explicit_dev_set_and_integer_labels(tiny_training_data):
    texts, labels = tiny_training_data
    names = ["negative", "neutral", "positive"]
    ids = [names.index(x) for x in labels]
    dev = (["I love it", "I hate it"], ["positive", "negative"])
    result = train(texts, ids, names, TrainRecipe(**FAST), dev=dev, run=QUIET)
    assert result.manifest["dev_source"] == "explicit"
    assert result.dev_report.n == 2
    assert result.manifest["train_rows"] == len(texts)


def test_weights_change_the_model(tiny_training_data):
    texts, labels = tiny_training_data
    names = ["negative", "neutral", "positive"]
    recipe = TrainRecipe(**FAST, balance_classes=False)  # balancing would undo a per-label skew
    plain = train(texts, labels, names, recipe, run=QUIET)
    ones = train(texts, labels, names, recipe, weights=[1.0] * len(texts), run=QUIET)
    skewed = [5.0 if x == "positive" else 0.2 for x in labels]
    heavy = train(texts, labels, names, recipe, weights=skewed, run=QUIET)
    probe = ["the thing"]
    assert np.allclose(plain.classifier.predict_proba(probe), ones.classifier.predict_proba(probe))
    p_plain = plain.classifier.predict_proba(probe)[0, 2]
    assert heavy.classifier.predict_proba(probe)[0, 2] > p_plain


@pytest.mark.parametrize(
    ("labels", "names", "match"),
    [
        (["a", "b"], ["a"], "at least 2"),
        (["a", "c"], ["a", "b"], "unknown label 'c'"),
        (["a", "a"], ["a", "a"], "at least 2 distinct"),
    ],
)
def test_bad_arguments(labels, names, match):
    with pytest.raises(ValueError, match=match):
        train(["x", "y"], labels, names, TrainRecipe(**FAST), run=QUIET)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 0}, "epochs and batch_size"),
        ({"seed": -1}, "seed must be 0 or more"),
        ({"dev_fraction": 1.0}, "dev_fraction"),
    ],
)
def test_bad_recipe_is_refused_up_front(change, match):
    with pytest.raises(ValueError, match=match):
        train(["x", "y"], ["a", "b"], ["a", "b"], TrainRecipe(**{**FAST, **change}))


def test_epoch_progress_is_logged_off_a_terminal_unless_silenced(
    tiny_training_data, caplog, monkeypatch
):
    import classifier.progress as progress

    monkeypatch.setattr(progress, "_config", progress._Config(every_seconds=0, bar=False))
    texts, labels = tiny_training_data
    names = ["negative", "neutral", "positive"]
    with caplog.at_level("INFO", logger="classifier.progress"):
        train(texts, labels, names, TrainRecipe(**FAST), run=RunSettings(progress=False))
        assert caplog.messages == []
        train(texts, labels, names, TrainRecipe(**FAST))
    assert any(m.startswith("epoch 1/4: done") for m in caplog.messages)
    assert any(m.startswith("epoch 2/4: done") for m in caplog.messages)


def test_manifest_hash_depends_on_content():
    a = data_manifest(["x", "y"], ["p", "n"], ["n", "p"])
    b = data_manifest(["x", "y"], ["n", "p"], ["n", "p"])
    assert a["rows_per_label"] == {"n": 1, "p": 1} and a["rows"] == 2
    assert a["sha256"] != b["sha256"]
    assert a == data_manifest(["x", "y"], ["p", "n"], ["n", "p"])


def test_class_balance_uses_weighted_counts():
    from classifier.training_data import _class_balance

    y = np.array([0, 0, 0, 1])
    plain = _class_balance(y, np.ones(4, dtype=np.float32), 3)
    assert plain.tolist() == pytest.approx([2 / 3, 2.0, 0.0])
    # Caller weights that already balance the labels are left alone.
    balanced = _class_balance(y, np.array([1, 1, 1, 3], dtype=np.float32), 3)
    assert balanced.tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_the_card_keeps_the_recipe_and_never_the_machine(tiny_training_data, tmp_path):
    texts, labels = tiny_training_data
    recipe = TrainRecipe(seed=5, **FAST)
    run = RunSettings(device="cpu", threads=2, feature_cache=str(tmp_path), progress=False)
    card = train(texts, labels, ["negative", "neutral", "positive"], recipe, run=run).card("train")
    assert card.recipe == recipe.to_dict() and card.recipe["seed"] == 5
    assert not {"device", "threads", "num_threads", "feature_cache", "progress"} & set(card.recipe)
    assert TrainRecipe.from_dict(card.recipe) == recipe
    # Older cards also kept the machine's settings among the recipe: they are left out.
    assert TrainRecipe.from_dict({**card.recipe, "device": "cuda", "num_threads": 4}) == recipe
