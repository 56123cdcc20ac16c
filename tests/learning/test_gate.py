"""The promotion gate decides from two eval reports and explains itself in words."""

from bot.learning.gate import decide


def report(macro_f1: float, recalls: dict[str, float], support: int = 10) -> dict:
    return {
        "macro_f1": macro_f1,
        "per_class": {
            label: {"precision": r, "recall": r, "f1": r, "support": support}
            for label, r in recalls.items()
        },
    }


GOOD = {"negative": 0.7, "neutral": 0.6, "positive": 0.8}


def test_better_candidate_is_promoted():
    d = decide(report(0.72, GOOD), report(0.70, GOOD), tolerance=0.005, max_recall_drop=0.05)
    assert d.promote and d.decision == "promoted"
    assert "0.720" in d.reason and "0.700" in d.reason


def test_within_tolerance_is_promoted_and_beyond_is_rejected():
    active = report(0.700, GOOD)
    assert decide(report(0.696, GOOD), active, tolerance=0.005, max_recall_drop=0.05).promote
    d = decide(report(0.690, GOOD), active, tolerance=0.005, max_recall_drop=0.05)
    assert not d.promote and d.decision == "rejected"
    assert "below the active model" in d.reason


def test_recall_drop_of_one_class_rejects_even_with_better_macro_f1():
    cand = report(0.80, {"negative": 0.60, "neutral": 0.9, "positive": 0.9})
    d = decide(cand, report(0.70, GOOD), tolerance=0.005, max_recall_drop=0.05)
    assert not d.promote
    assert "recall of negative drops from 0.700 to 0.600" in d.reason
    assert d.recall_changes["negative"] == (0.7, 0.6)


def test_drop_exactly_at_limit_passes():
    cand = report(0.70, {"negative": 0.65, "neutral": 0.6, "positive": 0.8})
    assert decide(cand, report(0.70, GOOD), tolerance=0.0, max_recall_drop=0.05).promote


def test_classes_absent_from_eval_are_ignored():
    active = report(0.7, GOOD)
    active["per_class"]["neutral"]["support"] = 0
    cand = report(0.7, {"negative": 0.7, "neutral": 0.0, "positive": 0.8})
    cand["per_class"]["neutral"]["support"] = 0
    assert decide(cand, active, tolerance=0.005, max_recall_drop=0.05).promote


def test_no_active_model_promotes():
    d = decide(report(0.3, GOOD), None, tolerance=0.005, max_recall_drop=0.05)
    assert d.promote and "no active model" in d.reason
