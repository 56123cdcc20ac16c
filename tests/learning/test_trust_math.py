"""The pure parts of trusted labels: Dawid-Skene resolution, Krippendorff's alpha and Cohen's
kappa against reference implementations, confident learning, the learning-curve verdict, the
queue's duplicate checks and hourly author cap."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.learning import curve, diversity, suspects
from bot.learning.agreement import cohen_kappa, krippendorff_alpha
from bot.learning.annotators import annotator_list, to_flag
from bot.learning.reliability import MODEL, Vote, dawid_skene
from bot.learning.resolution import resolve_rows
from storage import repositories as repo

LABELS = ["negative", "neutral", "positive"]


def wrong(rng: random.Random, label: str) -> str:
    return rng.choice([x for x in LABELS if x != label])


def simulated(n: int, annotators: dict[str, float], per_item: int, seed: int = 0):
    """Gold labels, votes and model probabilities: each annotator right with its accuracy (0:
    always wrong), each item labelled by `per_item` of them in turn (every pair overlaps); the
    model's top label (0.6) is right 60% of the time."""
    rng = random.Random(seed)
    gold = [rng.choice(LABELS) for _ in range(n)]
    names = sorted(annotators)
    votes, model = [], {}
    for i, truth in enumerate(gold):
        for k in range(per_item):
            who = names[(i + k) % len(names)]
            right = rng.random() < annotators[who]
            votes.append(Vote(i, who, truth if right else wrong(rng, truth)))
        top = truth if rng.random() < 0.6 else wrong(rng, truth)
        model[i] = [0.6 if label == top else 0.2 for label in LABELS]
    return gold, votes, model


def accuracy(result, gold) -> float:
    return sum(result.label_of(i)[0] == y for i, y in enumerate(gold)) / len(gold)


def test_adversary_among_three_is_outvoted_and_scored_unreliable():
    gold, votes, model = simulated(600, {"a": 1.0, "b": 0.95, "c": 0.0}, per_item=2)
    result = dawid_skene(votes, LABELS, model=model)
    assert accuracy(result, gold) >= 0.95
    assert result.voters["c"].accuracy < 0.1 < 0.9 < result.voters["a"].accuracy
    # A plain majority drops or coin-flips every item the adversary shares: far below that.
    majority = sum(
        1 for i, y in enumerate(gold) if [v.label for v in votes if v.item == i][:2].count(y) == 2
    )
    assert majority / len(gold) < 0.5


def test_two_annotators_one_always_wrong_the_model_breaks_the_tie():
    gold, votes, model = simulated(300, {"a": 1.0, "c": 0.0}, per_item=2)
    result = dawid_skene(votes, LABELS, model=model)
    assert accuracy(result, gold) >= 0.9
    assert result.voters["c"].accuracy < 0.1


def test_a_model_that_says_neutral_to_everything_cannot_overrule_the_annotator():
    rng = random.Random(3)
    gold = [rng.choice(LABELS) for _ in range(40)]
    votes = [Vote(i, "a", y) for i, y in enumerate(gold)]
    neutral = {i: [0.05, 0.9, 0.05] for i in range(len(gold))}
    assert accuracy(dawid_skene(votes, LABELS, model=neutral), gold) == 1.0


def test_no_votes_and_unknown_labels():
    assert dawid_skene([], LABELS).posteriors == {}
    assert dawid_skene([Vote(1, "a", "angry")], LABELS).posteriors == {}
    only_model = dawid_skene([], LABELS, model={1: [0.1, 0.8, 0.1]})
    assert only_model.posteriors == {}  # the weak voter alone resolves nothing


def rows_of(votes) -> list[repo.LabelRow]:
    now = datetime.now(UTC)
    return [repo.LabelRow(v.item, int(v.voter), v.label, "queue", now, f"t{v.item}") for v in votes]


def test_resolution_flags_and_excludes_the_adversary():
    gold, votes, model = simulated(200, {"1": 1.0, "2": 1.0, "3": 0.0}, per_item=2)
    guesses = {i: dict(zip(LABELS, p, strict=True)) for i, p in model.items()}
    resolved = resolve_rows(rows_of(votes), guesses, LABELS, {1, 2, 3})
    by_id = {e.message_id: e for e in resolved.examples}
    assert sum(by_id[i].label == y for i, y in enumerate(gold)) / len(gold) >= 0.95
    assert [source for source, _ in to_flag(resolved)] == ["3"]
    listing = annotator_list(resolved)
    row = next(r for r in listing.rows if r.source == "3")
    assert row.reliability < 0.1 and row.agreement == 0.0 and row.labels == len(gold) * 2 // 3
    assert listing.alpha.items == len(gold)
    excluded = resolve_rows(rows_of(votes), guesses, LABELS, {1, 2, 3}, excluded={"3"})
    assert excluded.reliability.voters.keys() == {"1", "2", MODEL}
    assert to_flag(excluded) == []
    # A settled review wins, with full confidence; a pending one weighs less in training.
    decided = resolve_rows(
        rows_of(votes), guesses, LABELS, {1, 2, 3}, decided={0: "neutral"}, pending={1}
    )
    first, second = decided.examples[0], decided.examples[1]
    assert (first.label, first.confidence, first.weight) == ("neutral", 1.0, 1.0)
    assert second.weight == pytest.approx(0.25 * second.confidence)


def test_inline_buttons_of_ordinary_people_are_one_source():
    now = datetime.now(UTC)
    rows = [repo.LabelRow(i, 500 + i, "positive", "inline", now, "t") for i in range(5)]
    rows += [repo.LabelRow(i, 7, "positive", "queue", now, "t") for i in range(5)]
    resolved = resolve_rows(rows, {}, LABELS, {7})
    assert resolved.labels_per_voter == {"inline": 5, "7": 5}
    assert resolved.voter_people["inline"] == 5


def test_krippendorff_alpha_matches_the_reference_implementation():
    krippendorff = pytest.importorskip("krippendorff")
    rng = random.Random(1)
    for trial in range(5):
        coders = 2 + trial
        labels = {c: {} for c in range(coders)}
        for item in range(60):
            for c in rng.sample(range(coders), rng.randint(1, coders)):
                labels[c][item] = LABELS[item % 3] if rng.random() < 0.6 else rng.choice(LABELS)
        data = np.full((coders, 60), np.nan)
        for c, per_item in labels.items():
            for item, label in per_item.items():
                data[c, item] = LABELS.index(label)
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert krippendorff_alpha(labels).value == pytest.approx(expected, abs=1e-9)


def test_alpha_edge_cases():
    assert krippendorff_alpha({1: {1: "a"}, 2: {2: "b"}}).value is None  # no item with 2 labels
    assert krippendorff_alpha({1: {1: "a"}, 2: {1: "a"}}).value is None  # one value throughout
    perfect = krippendorff_alpha({1: {1: "a", 2: "b"}, 2: {1: "a", 2: "b"}})
    assert perfect.value == pytest.approx(1.0) and perfect.items == 2


def test_cohen_kappa_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(2)
    for _ in range(5):
        a = [rng.choice(LABELS) for _ in range(80)]
        b = [x if rng.random() < 0.7 else rng.choice(LABELS) for x in a]
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


class _Model:
    """A fake fitted model: the given label's probability is low for the flipped rows."""

    labels = LABELS

    def __init__(self, truth: dict[str, str]):
        self.truth = truth

    def predict_proba(self, texts):
        return np.array(
            [[0.8 if label == self.truth[t] else 0.1 for label in LABELS] for t in texts]
        )


def test_confident_learning_finds_the_flipped_labels_out_of_fold():
    rng = random.Random(4)
    rows, truth, flipped = [], {}, set()
    for i in range(100):
        label = LABELS[i % 3]
        text = f"text {i}"
        truth[text] = label
        given = wrong(rng, label) if i % 10 == 0 else label
        if given != label:
            flipped.add(i)
        rows.append({"text": text, "label": given, "weight": 20.0, "message_id": i})
    rows.append({"text": "bootstrap", "label": "neutral", "weight": 1.0})
    truth["bootstrap"] = "neutral"
    fits = []

    def fit(train_rows):
        fits.append({r.get("message_id") for r in train_rows})
        return _Model(truth)

    found = suspects.suspicious_labels(rows, LABELS, fit, folds=4)
    assert {s.message_id for s in found} == flipped
    assert all(s.suggested_label == truth[f"text {s.message_id}"] for s in found)
    assert len(fits) == 4 and all(None in f and len(f) == 76 for f in fits)  # 75 + bootstrap
    assert suspects.suspicious_labels(rows[:10], LABELS, fit) == []  # too few labels


def test_learning_curve_verdicts():
    rows = [{"text": str(i), "label": "neutral", "message_id": i} for i in range(200)]
    rows.append({"text": "base", "label": "neutral"})
    seen = []

    def rising(train_rows):
        seen.append(len(train_rows))
        return 0.5 + 0.001 * (len(train_rows) - 1)

    made = curve.learning_curve(rows, 0.7, rising)
    assert seen == [51, 101, 151] and made["verdict"] == "rising"
    assert [p["labels"] for p in made["points"]] == [50, 100, 150, 200]
    flat = curve.learning_curve(rows, 0.6, lambda r: 0.6)
    assert flat["verdict"] == "flattening" and flat["gain"] == pytest.approx(0.0)
    few = curve.learning_curve(rows[:50], 0.6, rising)
    assert few["verdict"] == "too few labels to tell" and len(few["points"]) == 1


def test_normalized_duplicates_and_the_hourly_author_cap():
    assert diversity.normalize("BUY NOW!!! 17 http://spam.io/17 @bob") == "buy now"
    assert diversity.text_key("buy now!! 18") == diversity.text_key("BUY NOW 19 https://x.y")
    assert diversity.text_key("😂") != diversity.text_key("😡")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    burst = [
        repo.NewMessage(
            i, 42, f"new {chr(97 + i % 26)}{chr(97 + i // 26)}", start + timedelta(seconds=i)
        )
        for i in range(100)
    ]
    verdicts = diversity.admit(burst, set(), {}, max_per_author_hour=5)
    assert sum(v.reason is None for v in verdicts) == 5
    later = repo.NewMessage(500, 42, "an hour later", start + timedelta(hours=1, seconds=5))
    [verdict] = diversity.admit(
        [later], set(), {42: [v.message.received_at for v in verdicts[:5]]}, 5
    )
    assert verdict.reason is None  # the window slid past the burst
    copies = [repo.NewMessage(i, i, f"Same text {i}!", start) for i in range(10)]
    assert [v.reason for v in diversity.admit(copies, set(), {}, 0)].count(None) == 1


def test_near_duplicates_and_round_caps():
    a, b, c = frozenset({1, 2, 3, 4}), frozenset({1, 2, 3, 5}), frozenset({7, 8})
    assert diversity.near_duplicates([a, c], [b], 0.5) == [True, False]
    assert diversity.near_duplicates([a], [b], 1.01) == [False]
    items = [repo.QueueItem(i, "t", None, None, None, author_id=i % 2, chat_id=1) for i in range(4)]
    shown = [repo.ShownItem(10, 0, 1), repo.ShownItem(11, 0, 1)]
    caps = diversity.RoundCaps(per_author=2, per_chat=0)
    order = diversity.preferred_order(items, shown, [False, False, True, False], caps)
    assert [i.message_id for i in order] == [1, 3, 0, 2]  # author 0 capped, 2 a near copy
