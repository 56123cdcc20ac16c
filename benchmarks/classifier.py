"""Benchmark: the embedding classifier vs fastText (quality, training time, inference speed).

    python -m benchmarks.classifier            # from the repository root

Quality and training speed: train on SemEval-2017 4A train, evaluate macro-F1 on the TweetEval
sentiment validation split; fastText (supervised, word bigrams) on the same files, in the same
run. Both timings start from raw texts (fastText's includes tokenising and writing its input file;
both use the same tokenizer, so the comparison is about the models). Targets: our macro-F1 ≥
fastText's; our training time ≤ 2× fastText's.

Inference: `Predictor` throughput on 10,000 short texts, one caller awaiting each text in turn
and 256 concurrent callers, vs a fastText `predict` loop. Target ≥ 20,000 messages/s batched.
Prints the peak memory of the process. Skips cleanly when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

# Runnable as `python benchmarks/classifier.py` as well as `python -m benchmarks.classifier`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, data_file, peak_rss_mib, ratio, timed  # noqa: E402

LABELS = ["negative", "neutral", "positive"]


def train_ours(train_data, valid_data, **overrides):
    from classifier.metrics import evaluate
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

    times: dict[str, float] = {}
    with timed(times, "train"):
        quiet = RunSettings(progress=False)
        result = train(*train_data, LABELS, TrainRecipe(**overrides), run=quiet)
    report = evaluate(result.classifier, *valid_data)
    return result, report, times["train"]


def train_fasttext(train_data, valid_data, threads: int):
    import fasttext
    import numpy as np

    from classifier.metrics import report_from_indices
    from classifier.tokenizer import tokenize

    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        with timed(times, "train"):
            with path.open("w", encoding="utf-8") as fh:
                for text, label in zip(*train_data, strict=True):
                    fh.write(f"__label__{label} {' '.join(tokenize(text))}\n")
            model = fasttext.train_supervised(
                input=str(path), wordNgrams=2, thread=threads, verbose=0
            )
    texts, gold = valid_data
    pred = [model.predict(" ".join(tokenize(t)))[0][0].removeprefix("__label__") for t in texts]
    index = {label: i for i, label in enumerate(LABELS)}
    report = report_from_indices(
        np.array([index[g] for g in gold]), np.array([index[p] for p in pred]), LABELS
    )
    return model, report, times["train"]


async def predictor_throughput(
    classifier, texts: list[str], max_wait_ms: float
) -> tuple[float, float]:
    """(msg/s of one caller awaiting 2,000 texts in turn, msg/s of 256 callers over all texts)."""
    from classifier.predictor import Predictor

    async with Predictor(classifier, "bench", max_wait_ms=max_wait_ms) as predictor:
        await predictor.predict(texts[:10])  # warm-up
        started = time.perf_counter()
        for text in texts[:2000]:
            await predictor.predict([text])
        single = 2000 / (time.perf_counter() - started)

        callers = 256
        queue = list(texts)

        async def caller(offset: int) -> None:
            for i in range(offset, len(queue), callers):
                await predictor.predict([queue[i]])

        started = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        batched = len(texts) / (time.perf_counter() - started)
    return single, batched


def fasttext_predict_rate(model, texts: list[str]) -> float:
    from classifier.tokenizer import tokenize

    started = time.perf_counter()
    for text in texts:
        model.predict(" ".join(tokenize(text)))
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="fastText training threads (default: 2, the target machine's cores)",
    )
    parser.add_argument(
        "--no-bigram-check", action="store_true", help="skip the extra run with hashed bigrams"
    )
    args = parser.parse_args()

    train_path = data_file("semeval2017_4a", "train.csv")
    valid_path = data_file("tweeteval_sentiment", "validation.csv")
    from classifier.data import read_labelled_csv

    train_data = read_labelled_csv(train_path)
    valid_data = read_labelled_csv(valid_path)
    print(
        f"data: {len(train_data[0])} training rows ({train_path}), {len(valid_data[0])} "
        f"validation rows ({valid_path})"
    )
    print(cpu_note())

    ours, report, our_time = train_ours(train_data, valid_data)
    print(
        f"sentibot embedding: macro-F1 {report.macro_f1:.4f}  accuracy {report.accuracy:.4f}  "
        f"train {our_time:.1f}s  epochs run {ours.epochs_run} (best {ours.best_epoch})"
    )
    if not args.no_bigram_check:
        _, bigram, bigram_time = train_ours(train_data, valid_data, bigram_buckets=100_000)
        print(
            f"  same with 100k hashed-bigram buckets: macro-F1 {bigram.macro_f1:.4f}  "
            f"train {bigram_time:.1f}s"
        )
    ft_model, ft_report, ft_time = train_fasttext(train_data, valid_data, args.threads)
    print(
        f"fastText (wordNgrams=2, {args.threads} threads): macro-F1 {ft_report.macro_f1:.4f}  "
        f"accuracy {ft_report.accuracy:.4f}  train {ft_time:.1f}s"
    )
    gap = report.macro_f1 - ft_report.macro_f1
    print(f"quality: macro-F1 difference {gap:+.4f} (target ≥ 0) {'OK' if gap >= 0 else 'MISSED'}")
    print(
        f"training time: ours / fastText = {ratio(our_time, ft_time)} (target ≤ 2x) "
        f"{'OK' if our_time <= 2 * ft_time else 'MISSED'}"
    )

    texts = (valid_data[0] * (10_000 // len(valid_data[0]) + 1))[:10_000]
    ft_rate = fasttext_predict_rate(ft_model, texts)
    for wait in (2.0, 0.0):  # the default PREDICT_MAX_WAIT_MS, then no waiting at all
        single, batched = asyncio.run(predictor_throughput(ours.classifier, texts, wait))
        print(
            f"Predictor (max_wait_ms={wait:g}): {single:,.0f} msg/s single caller, "
            f"{batched:,.0f} msg/s with 256 callers (target ≥ 20,000) "
            f"{'OK' if batched >= 20_000 else 'MISSED'}"
        )
    print(
        f"fastText predict loop: {ft_rate:,.0f} msg/s; Predictor batched / fastText = "
        f"{ratio(batched, ft_rate)}"
    )
    print(f"peak memory (RSS): {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
