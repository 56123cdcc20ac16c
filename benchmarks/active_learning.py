"""Active learning with simulated annotators, and the bot's reply latency while it retrains.

Part 1 — does the queue's order pay off? Starting from the bootstrap model, each round takes
`--batch` (100) items from a pool (`../shared/data/semeval2017_4a/train.csv`) in queue order —
smallest margin between the current model's two most likely labels first, exactly as
`storage.repositories.next_queue_item` orders them — reveals their true labels, retrains the way
the bot does (bootstrap corpus with weight 1 + the labels so far with weight `USER_LABEL_WEIGHT`,
the bootstrap model's own training recipe) and evaluates on
`../shared/data/tweeteval_sentiment/validation.csv`. Random order is the peer, in the same run.
Printed: both learning curves, and how many labels each order needs to reach random order's
final macro-F1. Target: uncertainty order needs ≤ 70% of random order's labels.

Part 2 — does training hurt the bot? The real bot (`bot.app.serve`, as `sentibot run`) runs
against the fake Bot API server of the tests, with the bootstrap model active; one user sends
messages one after another and we time each reply (update queued → reply received), first with
no training, then while `/retrain force` runs (worker process on the full bootstrap corpus).
Printed: p50 / p99 of both, and the p99 ratio. Target: ≤ 2.

    python benchmarks/active_learning.py [--rounds 8] [--batch 100] [--pool 20000]
                                         [--latency-messages 200] [--skip-latency]

Runtime on 2 shared cores: about 2 × rounds retrains of the bootstrap corpus (a few seconds to
tens of seconds each) plus one retrain in the latency part. Skips when the data is absent.
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


# --- part 1: learning curves ---------------------------------------------------------------------
def margins(classifier, texts: list[str]):
    """Top-1 minus top-2 probability per text (the queue's uncertainty)."""
    import numpy as np

    probs = classifier.predict_proba(texts)
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def retrain(base, labelled, config, weight: float, prior: float | None, dev):
    """What a bot retrain does: the bootstrap corpus (its own row weights) + the labels (weight
    `weight`), early stopping on the bootstrap dev slice, then the lexicon prior when the
    bootstrap model had one."""
    from bot.training_worker import _apply_prior
    from classifier.training import train

    texts, labels, weights = base
    texts = list(texts) + [t for t, _ in labelled]
    labels = list(labels) + [y for _, y in labelled]
    weights = list(weights or [1.0] * len(base[0])) + [weight] * len(labelled)
    result = train(texts, labels, LABELS, config, weights=weights, dev=dev, progress=False)
    model = result.classifier
    _apply_prior(model, prior)
    return model


def curve(order: str, boot, base, pool, evalset, args, config, weight, prior, dev):
    """macro-F1 on the eval set after 0, 1, …, rounds batches labelled in `order`."""
    from classifier.metrics import evaluate

    rng = random.Random(args.seed)
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
        model = retrain(base, labelled, config, weight, prior, dev)
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
    from bot.learning import _lexicon_prior, _unpack, default_base_corpus, default_dev_slice
    from classifier.artifacts import load_model, read_metrics
    from classifier.data import read_labelled_csv
    from classifier.training import TrainConfig

    pool = read_labelled_csv(data_file("semeval2017_4a", "train.csv"))
    evalset = read_labelled_csv(data_file("tweeteval_sentiment", "validation.csv"))
    if args.pool and args.pool < len(pool[0]):
        keep = sorted(random.Random(args.seed).sample(range(len(pool[0])), args.pool))
        pool = ([pool[0][i] for i in keep], [pool[1][i] for i in keep])
    base = _unpack(default_base_corpus())
    dev = _unpack(default_dev_slice())[:2]
    card = read_metrics(boot_dir)
    prior = _lexicon_prior(card)
    recipe = (card.get("manifest") or {}).get("train_config") or {}
    known = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in recipe.items() if k in known and k != "device"})
    boot = load_model(boot_dir)
    print(
        f"pool {len(pool[0]):,} tweets, eval {len(evalset[0]):,}, bootstrap corpus "
        f"{len(base[0]):,} rows, user label weight {args.weight:g}, lexicon prior {prior}, "
        f"{args.rounds} rounds × {args.batch}"
    )
    curves = {
        order: curve(order, boot, base, pool, evalset, args, config, args.weight, prior, dev)
        for order in ("uncertainty", "random")
    }
    print("\nlearning curves (macro-F1 on TweetEval validation):")
    print("labels  " + "  ".join(f"{o:>11}" for o in curves))
    for round_no in range(args.rounds + 1):
        row = "  ".join(f"{curves[o][round_no]:11.4f}" for o in curves)
        print(f"{round_no * args.batch:6d}  {row}")
    goal = curves["random"][-1]
    need = {o: labels_needed(s, goal, args.batch) for o, s in curves.items()}
    print(f"\nlabels needed to reach random order's final macro-F1 ({goal:.4f}):")
    for order, n in need.items():
        print(f"  {order:>11}: {'not reached' if n is None else n}")
    if need["uncertainty"] is not None and need["random"]:
        share = need["uncertainty"] / need["random"]
        verdict = "met" if share <= TARGET_LABEL_SHARE else "NOT met"
        print(
            f"uncertainty / random labels: {share:.0%} (target ≤ {TARGET_LABEL_SHARE:.0%}: "
            f"{verdict})"
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


async def _measure(args, fake, application, chat, user, texts: list[str]) -> None:
    learning = application.bot_data["runtime"].learning
    for text in texts[:20]:  # warm-up
        await _reply_latency(fake, chat, user, text)
    idle = [await _reply_latency(fake, chat, user, t) for t in texts[: args.latency_messages]]
    run = asyncio.create_task(learning.retrain("admin", 8001, force=True))
    for _ in range(6000):  # measure only once the worker process exists
        if learning.worker_pid is not None or run.done():
            break
        await asyncio.sleep(0.05)
    busy: list[float] = []
    i = 0
    while not run.done() and len(busy) < args.latency_messages:
        busy.append(await _reply_latency(fake, chat, user, texts[i % len(texts)]))
        i += 1
    outcome = await run
    print(
        f"\nreply latency through the fake Bot API ({len(idle)} replies idle, {len(busy)} "
        f"while training; retrain {outcome.status} in {outcome.seconds:.0f}s):"
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
    parser.add_argument(
        "--weight", type=float, default=None, help="user label weight (default: the bot's)"
    )
    parser.add_argument("--latency-messages", type=int, default=200)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-curves", action="store_true")
    parser.add_argument("--model", type=Path, help="bootstrap model folder (default: build it)")
    args = parser.parse_args()
    if args.weight is None:
        from bot.learning import USER_LABEL_WEIGHT

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
