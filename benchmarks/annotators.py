"""Labels you can trust, with simulated annotators on SemEval rows.

Part 1 — an adversary among three: 1,000 items of `../shared/data/semeval2017_4a/train.csv`,
LABELS_PER_ITEM=2, the three pairs of annotators take turns (every pair overlaps); A and B give
the gold label (`--honest` their accuracy), C always a wrong one. Resolved by the bot's code
(`bot.learning.resolution.resolve_rows`: Dawid–Skene with the bootstrap model as a weak voter)
against the peer, a plain majority (today's rule: a 1-1 tie is dropped; or coin-flipped).
Then a model is trained as a retrain does (bootstrap corpus + labels × 20, weighted by the
resolution's confidence) on the resolved labels and on the gold labels, both scored on
`../shared/data/tweeteval_sentiment/validation.csv`. Targets: resolved = gold on ≥ 95%, C
flagged, macro-F1 within 0.01 of gold's.

Part 2 — two annotators, one always wrong (no third person): the honest one's share.
Target ≥ 90%.

Part 3 — /review: 2,000 other items with gold labels, 10% flipped at random. The retrain's
check (`bot.learning.suspects`, 4 folds, each trained like a retrain) lists suspects, most
suspicious first; precision of the first 200 (target ≥ 0.5, random 0.1). Then the first 200
are reviewed (a flipped one changed back, a right one kept), the rest stay down-weighted, and
macro-F1 is compared: gold labels, flipped labels, after the review (target: the review wins
back ≥ half of what the flips cost).

Part 4 — a burst: one user sends 150 near-identical messages; how many enter the queue
(`bot.learning.diversity.admit` with QUEUE_MAX_PER_AUTHOR_HOUR=10). Target: a handful (≤ 5).

    python benchmarks/annotators.py [--items 1000] [--review-items 2000] [--seed 0]
                                    [--model DIR] [--skip-training]

About 5–10 minutes on 2 shared cores (9 trainings of the bootstrap corpus). Skips when the
data is absent.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, data_file  # noqa: E402

LABELS = ["negative", "neutral", "positive"]
WEIGHT = 20.0


def read(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in LABELS]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def wrong(rng: random.Random, label: str) -> str:
    return rng.choice([x for x in LABELS if x != label])


# --- parts 1 and 2: resolution ------------------------------------------------------------------
def simulate(texts, gold, annotators: dict[int, float], per_item: int, rng):
    """Label rows: item i goes to `per_item` annotators in turn; each is right with its
    accuracy (0.0: always wrong)."""
    from storage import repositories as repo

    now = datetime.now(UTC)
    ids = sorted(annotators)
    rows = []
    for i, (text, truth) in enumerate(zip(texts, gold, strict=True)):
        for k in range(per_item):
            who = ids[(i + k) % len(ids)] if per_item < len(ids) else ids[k]
            right = rng.random() < annotators[who]
            label = truth if right else wrong(rng, truth)
            rows.append(repo.LabelRow(i + 1, who, label, "queue", now, text))
    return rows


def majority_share(rows, gold, rng) -> tuple[float, float]:
    """The peer: share of items whose majority label is gold (ties dropped / coin-flipped)."""
    from collections import defaultdict

    from storage.repositories import majority

    per = defaultdict(list)
    for row in rows:
        per[row.message_id].append(row.label)
    dropped = sum(majority(per[i + 1]) == y for i, y in enumerate(gold)) / len(gold)
    flipped = sum(
        (majority(per[i + 1]) or rng.choice(per[i + 1])) == y for i, y in enumerate(gold)
    ) / len(gold)
    return dropped, flipped


def resolve(rows, guesses, annotators):
    from bot.learning.annotators import to_flag
    from bot.learning.resolution import resolve_rows

    started = time.perf_counter()
    resolved = resolve_rows(rows, guesses, LABELS, set(annotators))
    seconds = time.perf_counter() - started
    return resolved, to_flag(resolved), seconds


def share(resolved, gold, ids=None) -> float:
    by_id = {e.message_id: e.label for e in resolved.examples}
    items = range(len(gold)) if ids is None else ids
    return sum(by_id.get(i + 1) == gold[i] for i in items) / len(list(items))


# --- training as a retrain does -------------------------------------------------------------------
class Trainer:
    def __init__(self, model_dir: Path, evalset):
        from bot.learning.data import default_base_corpus, default_dev_slice, unpack
        from classifier.card import read_card
        from classifier.recipe import TrainRecipe

        card = read_card(model_dir)
        self.recipe = TrainRecipe.from_dict(card.recipe)
        self.post = card.postprocess is not None
        self.base = unpack(default_base_corpus())
        self.dev = default_dev_slice()
        self.evalset = evalset

    def fit(self, rows: list[dict]):
        from classifier.bootstrap import postprocess
        from classifier.recipe import RunSettings
        from classifier.training import train

        texts, labels, weights = self.base
        result = train(
            list(texts) + [r["text"] for r in rows],
            list(labels) + [r["label"] for r in rows],
            LABELS,
            self.recipe,
            run=RunSettings(progress=False),
            weights=list(weights or [1.0] * len(texts)) + [r["weight"] for r in rows],
            dev=self.dev,
        )
        if self.post:
            postprocess(result.classifier, self.dev)
        return result.classifier

    def score(self, rows: list[dict]) -> float:
        from classifier.metrics import evaluate

        started = time.perf_counter()
        f1 = evaluate(self.fit(rows), *self.evalset).macro_f1
        print(f"    (trained on {len(rows)} labels in {time.perf_counter() - started:.0f} s)")
        return f1


def rows_of(texts, labels, weights=None, ids=None) -> list[dict]:
    weights = weights or [1.0] * len(texts)
    return [
        {"text": t, "label": y, "weight": WEIGHT * w, "message_id": (ids or {}).get(i, i + 1)}
        for i, (t, y, w) in enumerate(zip(texts, labels, weights, strict=True))
    ]


# --- the parts ------------------------------------------------------------------------------------
def part_adversary(args, texts, gold, model, trainer) -> None:
    rng = random.Random(args.seed)
    guesses = {
        i + 1: dict(zip(LABELS, p, strict=True)) for i, p in enumerate(model.predict_proba(texts))
    }
    print(
        f"\n== Part 1: three annotators (A, B honest at {args.honest:.0%}; C always wrong), "
        f"LABELS_PER_ITEM=2, {len(gold)} items =="
    )
    annotators = {1: args.honest, 2: args.honest, 3: 0.0}
    rows = simulate(texts, gold, annotators, 2, rng)
    resolved, flags, seconds = resolve(rows, guesses, annotators)
    dropped, flipped = majority_share(rows, gold, rng)
    ok = share(resolved, gold)
    print(f"  resolved = gold on {ok:.1%} of items (target ≥ 95%) in {seconds * 1000:.0f} ms")
    print(f"  peer, plain majority: {dropped:.1%} (ties dropped), {flipped:.1%} (coin-flipped)")
    for voter, est in sorted(resolved.reliability.voters.items()):
        print(f"  reliability {voter}: {est.accuracy:.3f} over {est.labels} labels")
    print(f"  flagged: {[s for s, _ in flags]} (target: ['3'], C)")
    if trainer is not None:
        by_id = {e.message_id: e for e in resolved.examples}
        ex = [by_id[i + 1] for i in range(len(gold))]
        f1_resolved = trainer.score(
            rows_of([e.text for e in ex], [e.label for e in ex], [e.weight for e in ex])
        )
        f1_gold = trainer.score(rows_of(texts, gold))
        print(
            f"  macro-F1: trained on resolved {f1_resolved:.4f}, on gold {f1_gold:.4f} "
            f"(difference {f1_gold - f1_resolved:+.4f}, target ≤ 0.01)"
        )

    print(f"\n== Part 2: two annotators, one always wrong, {len(gold)} shared items ==")
    two = {1: 1.0, 3: 0.0}
    rows = simulate(texts, gold, two, 2, rng)
    resolved, flags, _ = resolve(rows, guesses, two)
    print(
        f"  the honest one's label wins on {share(resolved, gold):.1%} (target ≥ 90%); "
        f"plain majority: 0% (every item a tie); flagged {[s for s, _ in flags]}"
    )


def part_review(args, texts, gold, trainer) -> None:
    from bot.learning.resolution import REVIEW_PENDING_WEIGHT
    from bot.learning.suspects import suspicious_labels

    rng = random.Random(args.seed + 1)
    n = len(gold)
    noisy = list(gold)
    flipped = set(rng.sample(range(n), n // 10))
    for i in flipped:
        noisy[i] = wrong(rng, gold[i])
    print(f"\n== Part 3: /review on {n} labels, {len(flipped)} flipped at random ==")
    started = time.perf_counter()
    found = suspicious_labels(rows_of(texts, noisy), LABELS, trainer.fit, folds=args.folds)
    seconds = time.perf_counter() - started
    first = [s.message_id - 1 for s in found[:200]]
    hits = sum(i in flipped for i in first)
    print(
        f"  {len(found)} suspects in {seconds:.0f} s ({args.folds} folds); first 200: "
        f"{hits} flipped (precision {hits / max(1, len(first)):.2f}, target ≥ 0.5; random 0.1)"
    )
    pending = {s.message_id - 1 for s in found[200:]}
    reviewed = [gold[i] if i in first else noisy[i] for i in range(n)]
    weights = [REVIEW_PENDING_WEIGHT if i in pending else 1.0 for i in range(n)]
    f1_gold = trainer.score(rows_of(texts, gold))
    f1_noisy = trainer.score(rows_of(texts, noisy))
    f1_reviewed = trainer.score(rows_of(texts, reviewed, weights))
    cost = f1_gold - f1_noisy
    back = (f1_reviewed - f1_noisy) / cost if cost > 0 else float("nan")
    print(
        f"  macro-F1: gold {f1_gold:.4f}, flipped {f1_noisy:.4f}, after reviewing the first "
        f"200 {f1_reviewed:.4f}: the flips cost {cost:+.4f}, the review won back {back:.0%} "
        "(target ≥ 50%)"
    )


def part_burst(args) -> None:
    from bot.learning.diversity import admit
    from storage import repositories as repo

    start = datetime.now(UTC)
    burst = [
        repo.NewMessage(
            i,
            42,
            f"BUY NOW!!! only {i}$ http://x.io/{i} @friend{i % 7}",
            start + timedelta(seconds=i),
        )
        for i in range(150)
    ]
    verdicts = admit(burst, set(), {}, max_per_author_hour=10)
    entered = sum(v.reason is None for v in verdicts)
    varied = [
        repo.NewMessage(i, 42, f"{rng_word(i)} deal today, buy now", start + timedelta(seconds=i))
        for i in range(150)
    ]
    entered_varied = sum(v.reason is None for v in admit(varied, set(), {}, 10))
    print("\n== Part 4: a burst of 150 messages from one user ==")
    print(
        f"  near-identical copies: {entered} enter the queue (target ≤ 5); "
        f"150 with a different word each: {entered_varied} (QUEUE_MAX_PER_AUTHOR_HOUR=10)"
    )


def rng_word(i: int) -> str:
    return "".join(chr(97 + (i * 7 + k * 3) % 26) for k in range(5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--review-items", type=int, default=2000)
    parser.add_argument("--honest", type=float, default=1.0, help="honest annotators' accuracy")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="bootstrap model folder (default: build one)")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    pool = read(data_file("semeval2017_4a", "train.csv"))
    evalset = read(data_file("tweeteval_sentiment", "validation.csv"))
    print(cpu_note())
    part_burst(args)
    rng = random.Random(args.seed)
    picked = rng.sample(range(len(pool[0])), args.items + args.review_items)
    texts = [pool[0][i] for i in picked]
    gold = [pool[1][i] for i in picked]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or _bootstrap(Path(tmp) / "boot")
        from classifier.artifacts import load_model

        model = load_model(model_dir)
        trainer = None if args.skip_training else Trainer(model_dir, evalset)
        part_adversary(args, texts[: args.items], gold[: args.items], model, trainer)
        if trainer is not None:
            part_review(args, texts[args.items :], gold[args.items :], trainer)
    return 0


def _bootstrap(folder: Path) -> Path:
    from classifier.bootstrap import build_bootstrap_model

    print("building the bootstrap model (about a minute)…", flush=True)
    return Path(build_bootstrap_model(folder))


if __name__ == "__main__":
    sys.exit(main())
