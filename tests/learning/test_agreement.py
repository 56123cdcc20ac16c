"""Cohen's kappa, checked against hand-computed values."""

import pytest

from bot.learning.agreement import cohen_kappa, pairwise_agreement
from bot.texts import kappa_words


def test_kappa_textbook_example():
    # 2x2 table: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5 -> kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_perfect_and_chance_and_undefined():
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "a", "b", "b"]) == pytest.approx(0.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["a"], [])


def test_pairwise_uses_only_shared_items():
    labels = {
        1: {10: "pos", 11: "neg", 12: "neu", 13: "pos"},
        2: {10: "pos", 11: "neg", 12: "pos", 99: "neg"},
        3: {50: "pos"},
    }
    pairs = pairwise_agreement(labels)
    assert [(p.annotator_a, p.annotator_b, p.n) for p in pairs] == [(1, 2, 3)]
    assert pairs[0].observed == pytest.approx(2 / 3)
    assert pairs[0].kappa == pytest.approx(
        cohen_kappa(["pos", "neg", "neu"], ["pos", "neg", "pos"])
    )


def test_describe():
    assert kappa_words(None) == "undefined"
    assert kappa_words(-0.1) == "worse than chance"
    assert kappa_words(0.5) == "moderate"
    assert kappa_words(0.2) == "slight" and kappa_words(0.8) == "substantial"
    assert kappa_words(0.95) == "almost perfect"
