"""Active learning with simulated annotators, and the bot's reply latency while it retrains.

Part 1 — does the queue's order pay off? Starting from the bootstrap model, each round takes
`--batch` (100) items from a pool (`../shared/data/semeval2017_4a/train.csv`) in queue order —
smallest margin between the current model's two most likely labels first, exactly as
`storage.repositories.next_queue_item` orders them — reveals their true labels, retrains the way
the bot does (bootstrap corpus with weight 1 + the labels so far with weight `USER_LABEL_WEIGHT`,
the bootstrap model's own training recipe) and evaluates on
`../shared/data/tweeteval_sentiment/validation.csv`. Random order is the peer, in the same run.
Random order is averaged over `--random-runs` shuffles (one shuffle is a noisy yardstick).
Printed: the learning curves, and how many labels each order needs to reach random order's
final macro-F1. Target: uncertainty order needs ≤ 70% of random order's labels.

Part 2 — does training hurt the bot? The real bot (`bot.app.serve`, as `sentibot run`) runs
against the fake Bot API server of the tests, with the bootstrap model active; one user sends
messages one after another and we time each reply (update queued → reply received), first with
no training, then while `/retrain force` runs (worker process on the full bootstrap corpus):
every reply from the worker's first training step until the run ends counts.
Printed: p50 / p99 of both, and the p99 ratio. Target: ≤ 2.

    python benchmarks/active_learning.py [--rounds 8] [--batch 100] [--pool 20000]
                                         [--random-runs 2] [--latency-messages 200]
                                         [--skip-latency] [--skip-curves] [--model DIR]

Runtime on 2 shared cores: (1 + random runs) × rounds retrains of the bootstrap corpus (8–25 s
each: about 4–8 minutes with the defaults) plus one retrain in the latency part (under a minute).
Skips when the data is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, data_file, peak_rss_mib  # noqa: E402

LABELS = ["negative", "neutral", "positive"]
TARGET_LABEL_SHARE = 0.70
TARGET_P99_RATIO = 2.0
PACE_S = 0.02  # pause between one reply and the next message in the latency part


# --- part 1: learning curves ---------------------------------------------------------------------
def margins(classifier, texts: list[str]):
    """Top-1 minus top-2 probability per text (the queue's uncertainty)."""
    import numpy as np

    probs = classifier.predict_proba(texts)
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def retrain(base, labelled, recipe, weight: float, post: bool, dev):
    """What a bot retrain does: the bootstrap corpus (its own row weights) + the labels (weight
    `weight`), early stopping on the bootstrap dev slice, then the bootstrap recipe's
    after-training steps when the bootstrap model had them."""
    from classifier.bootstrap import postprocess
    from classifier.recipe import RunSettings
    from classifier.training import train

    texts, labels, weights = base
    texts = list(texts) + [t for t, _ in labelled]
    labels = list(labels) + [y for _, y in labelled]
    weights = list(weights or [1.0] * len(base[0])) + [weight] * len(labelled)
    quiet = RunSettings(progress=False)
    result = train(texts, labels, LABELS, recipe, run=quiet, weights=weights, dev=dev)
    model = result.classifier
    if post:
        postprocess(model, dev)
    return model


def curve(order: str, boot, base, pool, evalset, args, recipe, weight, post, dev, seed=0):
    """macro-F1 on the eval set after 0, 1, …, rounds batches labelled in `order`."""
    from classifier.metrics import evaluate

    rng = random.Random(args.seed + seed)
    remaining = list(range(len(pool[0])))
    rng.shuffle(remaining)
    labelled: list[tuple[str, str]] = []
    model = boot
    scores = [evaluate(model, *evalset).macro_f1]
    for round_no in range(1, args.rounds + 1):
        if order == "uncertainty":
            m = margins(model, [pool[0][i] for i in remaining])
            ranked = sorted(range(len(remaining)), key=lambda k: (m[k], remaining[k]))
            picked = {remaining[k] for k in ranked[: args.batch]}
        else:
            picked = set(remaining[: args.batch])
        remaining = [i for i in remaining if i not in picked]
        labelled += [(pool[0][i], pool[1][i]) for i in sorted(picked)]
        started = time.perf_counter()
        model = retrain(base, labelled, recipe, weight, post, dev)
        scores.append(evaluate(model, *evalset).macro_f1)
        print(
            f"  {order:>11} round {round_no}: {len(labelled):5d} labels → macro-F1 "
            f"{scores[-1]:.4f} (retrain {time.perf_counter() - started:.1f}s)",
            flush=True,
        )
    return scores


def labels_needed(scores: list[float], goal: float, batch: int) -> int | None:
    """Labels after the first round whose macro-F1 reaches `goal` (None: never)."""
    for round_no, score in enumerate(scores):
        if score >= goal - 1e-12:
            return round_no * batch
    return None


def learning_curves(args, boot_dir: Path) -> None:
    from bot.learning.data import default_base_corpus, default_dev_slice, unpack
    from classifier.artifacts import load_model
    from classifier.card import read_card
    from classifier.data import read_labelled_csv
    from classifier.recipe import TrainRecipe

    pool = read_labelled_csv(data_file("semeval2017_4a", "train.csv"))
    evalset = read_labelled_csv(data_file("tweeteval_sentiment", "validation.csv"))
    if args.pool and args.pool < len(pool[0]):
        keep = sorted(random.Random(args.seed).sample(range(len(pool[0])), args.pool))
        pool = ([pool[0][i] for i in keep], [pool[1][i] for i in keep])
    base = unpack(default_base_corpus())
    dev = unpack(default_dev_slice())[:2]
    card = read_card(boot_dir)
    post = card.postprocess is not None
    recipe = TrainRecipe.from_dict(card.recipe)
    boot = load_model(boot_dir)
    print(
        f"pool {len(pool[0]):,} tweets, eval {len(evalset[0]):,}, bootstrap corpus "
        f"{len(base[0]):,} rows, user label weight {args.weight:g}, postprocess {post}, "
        f"{args.rounds} rounds × {args.batch}"
    )
    run = (boot, base, pool, evalset, args, recipe, args.weight, post, dev)
    curves = {"uncertainty": curve("uncertainty", *run)}
    # Random order is averaged over several shuffles: one shuffle's curve is too noisy a yardstick.
    randoms = [curve("random", *run, seed=k) for k in range(args.random_runs)]
    for k, scores in enumerate(randoms):
        curves[f"random#{k + 1}"] = scores
    curves["random"] = [statistics.fmean(col) for col in zip(*randoms, strict=True)]
    print("\nlearning curves (macro-F1 on TweetEval validation; random = mean of the shuffles):")
    print("labels  " + "  ".join(f"{o:>11}" for o in curves))
    for round_no in range(args.rounds + 1):
        row = "  ".join(f"{curves[o][round_no]:11.4f}" for o in curves)
        print(f"{round_no * args.batch:6d}  {row}")
    report_labels_needed(curves["uncertainty"], curves["random"], args)


def report_labels_needed(uncertainty: list[float], rand: list[float], args) -> None:
    goal = rand[-1]
    budget = args.rounds * args.batch
    need = {
        "uncertainty": labels_needed(uncertainty, goal, args.batch),
        "random": labels_needed(rand, goal, args.batch),
    }
    print(f"\nlabels needed to reach random order's final macro-F1 ({goal:.4f} at {budget}):")
    for order, n in need.items():
        print(f"  {order:>11}: {'not reached' if n is None else n}")
    if need["uncertainty"] is None or not need["random"]:
        print(f"uncertainty / random labels: n/a (target ≤ {TARGET_LABEL_SHARE:.0%}: NOT met)")
        return
    share = need["uncertainty"] / need["random"]
    verdict = "met" if share <= TARGET_LABEL_SHARE else "NOT met"
    print(
        f"uncertainty / random labels: {share:.0%} of the labels random order needed "
        f"(target ≤ {TARGET_LABEL_SHARE:.0%}: {verdict}); "
        f"{need['uncertainty'] / budget:.0%} of random order's {budget} labels"
    )


# --- part 2: reply latency while training -------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def latency(args, boot_dir: Path, texts: list[str]) -> None:
    from bot.app import serve
    from bot.config import Settings
    from tests.e2e.fake_telegram import FakeTelegram

    admin = FakeTelegram.user(8001, "Admin")
    user = FakeTelegram.user(8002, "User")
    chat = FakeTelegram.private_chat(user)
    with tempfile.TemporaryDirectory(prefix="sentibot-bench-al-") as tmp:
        model_dir = Path(tmp) / "data" / "models"
        shutil.copytree(boot_dir, model_dir / "v0001")
        async with FakeTelegram() as fake:
            settings = Settings(
                _env_file=None,
                data_dir=Path(tmp) / "data",
                model_dir=model_dir,
                device="cpu",
                telegram_bot_token=fake.token,
                telegram_base_url=fake.base_url,
                telegram_base_file_url=fake.base_file_url,
                admin_ids=[admin["id"]],
                retrain_interval_minutes=0,
                log_level="WARNING",
            )
            started: asyncio.Future = asyncio.get_running_loop().create_future()
            stop = asyncio.Event()
            task = asyncio.create_task(
                serve(settings, stop=stop, on_started=started.set_result, rate_limit=False)
            )
            application = await asyncio.wait_for(started, 300)
            try:
                await _measure(args, fake, application, chat, user, texts)
            finally:
                stop.set()
                await asyncio.wait_for(task, 120)


async def _reply_latency(fake, chat: dict, user: dict, text: str) -> float:
    started = time.perf_counter()
    fake.user_says(chat, user, text)
    await fake.next_from_bot(chat["id"], timeout=60)
    return (time.perf_counter() - started) * 1000


async def _paced(fake, chat, user, texts: list[str], i: int) -> float:
    latency_ms = await _reply_latency(fake, chat, user, texts[i % len(texts)])
    await asyncio.sleep(PACE_S)  # a steady stream of users, not a flood
    return latency_ms


async def _measure(args, fake, application, chat, user, texts: list[str]) -> None:
    retrainer = application.bot_data["runtime"].learning.retrainer
    for i in range(20):  # warm-up
        await _paced(fake, chat, user, texts, i)
    idle = [await _paced(fake, chat, user, texts, i) for i in range(args.latency_messages)]
    seen: list = []
    run = asyncio.create_task(retrainer.retrain("admin", 8001, seen.append, force=True))
    for _ in range(6000):  # measure once the worker has loaded its data and starts training
        if run.done() or any(p.stage == "training" for p in seen):
            break
        await asyncio.sleep(0.05)
    busy: list[float] = []
    i = 0
    while not run.done():  # every reply until the run ends
        busy.append(await _paced(fake, chat, user, texts, i))
        i += 1
    outcome = await run
    print(
        f"\nreply latency through the fake Bot API, one message every ~{PACE_S * 1000:.0f} ms "
        f"({len(idle)} replies idle, {len(busy)} while the worker trained; retrain "
        f"{outcome.status} in {outcome.seconds:.0f}s):"
    )
    for name, values in (("idle", idle), ("training", busy)):
        print(
            f"  {name:>8}: p50 {statistics.median(values):6.1f} ms   "
            f"p99 {percentile(values, 0.99):6.1f} ms"
        )
    ratio = percentile(busy, 0.99) / percentile(idle, 0.99)
    verdict = "met" if ratio <= TARGET_P99_RATIO else "NOT met"
    print(f"p99 ratio training / idle: {ratio:.2f} (target ≤ {TARGET_P99_RATIO:g}: {verdict})")


# --- main -----------------------------------------------------------------------------------------
def bootstrap_model(folder: Path) -> Path:
    from classifier.bootstrap import build_bootstrap_model

    started = time.perf_counter()
    path = Path(build_bootstrap_model(folder))
    print(f"built the bootstrap model in {time.perf_counter() - started:.1f}s")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--pool", type=int, default=20000, help="pool size (0: all 47k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-runs", type=int, default=2, help="random shuffles to average")
    parser.add_argument(
        "--weight", type=float, default=None, help="user label weight (default: the bot's)"
    )
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-curves", action="store_true")
    parser.add_argument("--model", type=Path, help="bootstrap model folder (default: build it)")
    args = parser.parse_args()
    if args.weight is None:
        from bot.learning.data import USER_LABEL_WEIGHT

        args.weight = USER_LABEL_WEIGHT
    data_file("semeval2017_4a", "train.csv")
    val = data_file("tweeteval_sentiment", "validation.csv")
    logging.basicConfig(level=logging.WARNING)
    print(cpu_note())
    with tempfile.TemporaryDirectory(prefix="sentibot-bench-boot-") as tmp:
        boot_dir = args.model or bootstrap_model(Path(tmp) / "v0001")
        if not args.skip_curves:
            learning_curves(args, boot_dir)
        if not args.skip_latency:
            from classifier.data import read_labelled_csv

            texts = read_labelled_csv(val)[0]
            asyncio.run(latency(args, boot_dir, texts))
    print(f"peak RSS of the benchmark process: {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
