"""The training worker: one retraining run in its own process.

Run as `python -m bot.learning.worker SPEC` (the parent's side is `bot.learning.runner`).

The bot keeps answering while this process trains: it runs under a lower CPU priority with a
limited number of torch threads, and a crash or kill here cannot touch the running bot or its
active model (the candidate folder is written atomically, so a killed run leaves nothing behind).

Protocol (the parent is `bot.learning.retrainer.Retrainer`, through `bot.learning.runner`):

- SPEC is a JSON file (see `WorkerSpec`): paths of the training rows (JSON lines
  `{"text", "label", "weight"}`), evaluation rows and optional dev rows (`{"text", "label"}`),
  the label list, the `TrainRecipe` fields, the active model's folder (scored on the same eval
  rows, so the gate compares like with like), the candidate folder to write and what its model
  card records about the run (`origin`) and the data (`manifest`); this machine's device,
  threads and feature cache folder.
- Progress goes to stdout as JSON lines, one event per line:
  `{"event": "start", "train_rows": N, "eval_rows": M}`,
  `{"event": "epoch", "epoch": i, "epochs": n, "dev_macro_f1": f}`, `{"event": "evaluating"}`,
  `{"event": "done", "path": ..., "candidate": report, "active": report | null}`,
  or `{"event": "error", "error": "one line"}` before a non-zero exit.
  Anything else the libraries print is redirected to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from bot.learning.checks import label_checks
from classifier.artifacts import load_model, save_model
from classifier.bootstrap import postprocess
from classifier.metrics import evaluate
from classifier.model import Classifier
from classifier.recipe import RunSettings, TrainRecipe
from classifier.training import TrainResult, train

SPEC_FORMAT = 1


@dataclass
class WorkerSpec:
    """What one training run needs; written by the parent as JSON."""

    train_file: str
    eval_file: str
    labels: list[str]
    out_dir: str
    config: dict[str, Any] = field(default_factory=dict)
    active_model: str | None = None
    card: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    feature_cache: str | None = None  # a frozen BERT's vectors between runs (a run setting)
    # Run `classifier.bootstrap.postprocess` after training (lexicon prior, temperature, label
    # prior), as the bootstrap build does: set when the active model had it.
    postprocess: bool = False
    dev_file: str | None = None  # explicit early-stopping rows; None: carved from train rows
    # After the candidate (`bot.learning.checks`): cross-validation folds for suspicious labels
    # (0: off) and the learning curve.
    review_folds: int = 0
    learning_curve: bool = False
    nice: int = 10
    format: int = SPEC_FORMAT

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> WorkerSpec:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != SPEC_FORMAT:
            raise ValueError(f"{path}: unsupported worker spec format {data.get('format')!r}")
        return cls(**data)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    """Write JSON lines (one example per line); returns the path as a string."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _Events:
    """JSON-lines event writer on the original stdout (flushed per event)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def emit(self, event: str, **payload: Any) -> None:
        self._stream.write(json.dumps({"event": event, "time": time.time(), **payload}) + "\n")
        self._stream.flush()


def _claim_stdout() -> _Events:
    """Keep the real stdout for events; send every other print (libraries, tqdm) to stderr."""
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return _Events(events)


def _lower_priority(spec: WorkerSpec) -> None:
    """Yield the CPU to the bot: nice the process and cap torch's threads."""
    if spec.nice and hasattr(os, "nice"):
        try:
            os.nice(spec.nice)
        except OSError:  # not permitted here: run at normal priority
            pass
    torch.set_num_threads(max(1, spec.threads))


def run(spec: WorkerSpec, events: _Events) -> dict[str, Any]:
    """Train, evaluate candidate and active model on the eval rows, save the candidate."""
    train_rows, eval_rows = read_rows(spec.train_file), read_rows(spec.eval_file)
    events.emit("start", train_rows=len(train_rows), eval_rows=len(eval_rows))
    dev = _read_dev(spec)
    result = _train(spec, events, train_rows, dev)
    events.emit("evaluating", epochs_run=result.epochs_run)
    candidate = result.classifier
    # The bootstrap recipe's after-training steps (lexicon prior, temperature, label prior).
    post = postprocess(candidate, dev) if spec.postprocess else None
    cand_report, active_report = _score(spec, candidate, eval_rows)
    checks = label_checks(spec, events, train_rows, eval_rows, dev, cand_report)
    card = result.card(
        "retrain",
        eval=cand_report,
        eval_split="the eval split",
        active_eval=active_report,
        postprocess=post,
        data={**result.manifest, **dict(spec.card.get("manifest") or {})},
        origin={k: v for k, v in spec.card.items() if k != "manifest"},
        learning_curve=checks.get("curve"),
    )
    path = save_model(candidate, Path(spec.out_dir), card)
    return {"path": str(path), "candidate": cand_report, "active": active_report, **checks}


def _read_dev(spec: WorkerSpec) -> tuple[list[str], list[str]] | None:
    """The explicit early-stopping rows as (texts, labels); None: `train` carves its own."""
    if not spec.dev_file:
        return None
    dev_rows = read_rows(spec.dev_file)
    return [r["text"] for r in dev_rows], [r["label"] for r in dev_rows]


def _train(
    spec: WorkerSpec, events: _Events, train_rows: list[dict[str, Any]], dev: Any
) -> TrainResult:
    """Train the candidate on the weighted rows, one `epoch` event per epoch."""

    def on_epoch(epoch: int, epochs: int, dev_macro_f1: float | None) -> None:
        events.emit("epoch", epoch=epoch, epochs=epochs, dev_macro_f1=dev_macro_f1)

    return train(
        [r["text"] for r in train_rows],
        [r["label"] for r in train_rows],
        spec.labels,
        TrainRecipe.from_dict(spec.config),
        run=RunSettings(device=spec.device, feature_cache=spec.feature_cache, progress=False),
        weights=[float(r.get("weight", 1.0)) for r in train_rows],
        dev=dev,
        on_epoch=on_epoch,
    )


def _score(
    spec: WorkerSpec, candidate: Classifier, eval_rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Eval reports of the candidate and of the active model (if any) on the same rows."""
    eval_texts = [r["text"] for r in eval_rows]
    eval_gold = [r["label"] for r in eval_rows]
    cand_report = evaluate(candidate, eval_texts, eval_gold).to_dict()
    active_report = None
    if spec.active_model:
        active = load_model(spec.active_model, device=spec.device)
        active_report = evaluate(active, eval_texts, eval_gold).to_dict()
    return cand_report, active_report


# --- the worker's entry point ---------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    events = _claim_stdout()
    if len(argv) != 1:
        events.emit("error", error="usage: python -m bot.learning.worker SPEC.json")
        return 2
    try:
        spec = WorkerSpec.read(Path(argv[0]))
        _lower_priority(spec)
        outcome = run(spec, events)
    except Exception as exc:  # the parent records the run as failed with this line
        traceback.print_exc()
        events.emit("error", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        return 1
    events.emit("done", **outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
