"""Metrics against hand-computed values, and label-subset restriction."""

import numpy as np
import pytest

from classifier.artifacts import load_model
from classifier.metrics import evaluate, report_from_indices


def test_report_values():
    # gold: a a b b c ; pred: a b b b a
    report = report_from_indices([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    a, b, c = (report.per_class[x] for x in "abc")
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (0.5, 0.5, 0.5, 2)
    assert b["precision"] == pytest.approx(2 / 3) and b["recall"] == 1.0
    assert b["f1"] == pytest.approx(0.8)
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert report.n == 5 and report.restricted_to is None


def test_to_dict_shape():
    data = report_from_indices([0, 1], [0, 1], ["x", "y"]).to_dict()
    assert set(data) == {
        "accuracy",
        "macro_f1",
        "labels",
        "per_class",
        "confusion",
        "n",
        "restricted_to",
    }
    assert set(data["per_class"]["x"]) == {"precision", "recall", "f1", "support"}


def test_evaluate_full_labels(tiny_model_dir, tiny_training_data):
    texts, labels = tiny_training_data
    report = evaluate(load_model(tiny_model_dir), texts, labels)
    assert report.labels == ["negative", "neutral", "positive"]
    assert report.restricted_to is None
    assert report.n == len(texts) and report.accuracy > 0.9


def test_evaluate_restricts_to_present_labels(tiny_model_dir):
    classifier = load_model(tiny_model_dir)
    texts = ["I love this", "I hate this", "The report has ten pages"]
    gold = ["positive", "negative", "negative"]
    report = evaluate(classifier, texts, gold)
    assert report.restricted_to == ["negative", "positive"]
    assert report.labels == ["negative", "positive"]
    assert len(report.confusion) == 2
    # The predictions are the argmax over the two present labels' columns only.
    probs = classifier.predict_proba(texts)[:, [0, 2]]
    expected = np.zeros((2, 2), dtype=int)
    for g, p in zip([1, 0, 0], probs.argmax(axis=1), strict=True):
        expected[g][p] += 1
    assert report.confusion == expected.tolist()
    assert "restricted" in report.format_table()


def test_evaluate_does_not_restrict_to_a_single_label(tiny_model_dir):
    # Argmax over one label is always right: restricting would report a meaningless 100%.
    classifier = load_model(tiny_model_dir)
    texts = ["I love this", "I hate this"]
    report = evaluate(classifier, texts, ["negative", "negative"])
    assert report.restricted_to is None
    assert report.labels == classifier.labels
    predicted = classifier.predict(texts)
    assert report.accuracy == predicted.count("negative") / 2
    assert report.accuracy < 1.0  # "I love this" is not negative for the tiny model


def test_evaluate_rejects_unknown_gold_label(tiny_model_dir):
    with pytest.raises(ValueError, match="not among the model's labels"):
        evaluate(load_model(tiny_model_dir), ["x"], ["angry"])
