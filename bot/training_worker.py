"""The training worker: one retraining run in its own process.

Run as `python -m bot.training_worker SPEC`.

The bot keeps answering while this process trains: it runs under a lower CPU priority with a
limited number of torch threads, and a crash or kill here cannot touch the running bot or its
active model (the candidate folder is written atomically, so a killed run leaves nothing behind).

Protocol (the parent is `bot.learning.LearningService`):

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

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

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
    import torch

    if spec.nice and hasattr(os, "nice"):
        try:
            os.nice(spec.nice)
        except OSError:  # not permitted here: run at normal priority
            pass
    torch.set_num_threads(max(1, spec.threads))


def _postprocess(classifier, dev) -> dict[str, Any]:
    """The bootstrap recipe's after-training steps (lexicon prior, temperature, label prior)."""
    from classifier.bootstrap import postprocess

    return postprocess(classifier, dev)


def run(spec: WorkerSpec, events: _Events) -> dict[str, Any]:
    """Train, evaluate candidate and active model on the eval rows, save the candidate."""
    from classifier.artifacts import save_model

    train_rows, eval_rows = read_rows(spec.train_file), read_rows(spec.eval_file)
    events.emit("start", train_rows=len(train_rows), eval_rows=len(eval_rows))
    dev = _read_dev(spec)
    result = _train(spec, events, train_rows, dev)
    events.emit("evaluating", epochs_run=result.epochs_run)
    candidate = result.classifier
    post = _postprocess(candidate, dev) if spec.postprocess else None
    cand_report, active_report = _score(spec, candidate, eval_rows)
    card = result.card(
        "retrain",
        eval=cand_report,
        eval_split="the eval split",
        active_eval=active_report,
        postprocess=post,
        data={**result.manifest, **dict(spec.card.get("manifest") or {})},
        origin={k: v for k, v in spec.card.items() if k != "manifest"},
    )
    path = save_model(candidate, Path(spec.out_dir), card)
    return {"path": str(path), "candidate": cand_report, "active": active_report}


def _read_dev(spec: WorkerSpec) -> tuple[list[str], list[str]] | None:
    """The explicit early-stopping rows as (texts, labels); None: `train` carves its own."""
    if not spec.dev_file:
        return None
    dev_rows = read_rows(spec.dev_file)
    return [r["text"] for r in dev_rows], [r["label"] for r in dev_rows]


def _train(spec: WorkerSpec, events: _Events, train_rows: list[dict[str, Any]], dev):
    """Train the candidate on the weighted rows, one `epoch` event per epoch (-> TrainResult)."""
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

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
    spec: WorkerSpec, candidate, eval_rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Eval reports of the candidate and of the active model (if any) on the same rows."""
    from classifier.artifacts import load_model
    from classifier.metrics import evaluate

    eval_texts = [r["text"] for r in eval_rows]
    eval_gold = [r["label"] for r in eval_rows]
    cand_report = evaluate(candidate, eval_texts, eval_gold).to_dict()
    active_report = None
    if spec.active_model:
        active = load_model(spec.active_model, device=spec.device)
        active_report = evaluate(active, eval_texts, eval_gold).to_dict()
    return cand_report, active_report


# --- the parent's side ----------------------------------------------------------------------------
# `python -m bot.training_worker` must find the packages even when sentibot is not installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WorkerFailed(Exception):
    """The worker ended without a `done` event; the message says why in one line."""


async def run_worker(
    spec_path: Path,
    log_path: Path,
    on_event: Callable[[dict[str, Any]], Awaitable[None]],
    on_start: Callable[[asyncio.subprocess.Process | None], None],
) -> dict[str, Any]:
    """Start the worker on `spec_path`, pass each progress event to `on_event`, return the
    `done` event. Its stderr goes to `log_path`. `on_start(proc)` gets the process (and None
    when it has ended), so the caller can kill it. Cancelling this coroutine kills the worker.
    Raises `WorkerFailed` with the worker's error, its exit code or the signal that killed it.
    """
    path = os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])
    log_file = await asyncio.to_thread(open, log_path, "wb")
    with log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.training_worker",
            str(spec_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env={**os.environ, "PYTHONPATH": path},
        )
        on_start(proc)
        try:
            done, error = await _read_events(proc, on_event)
            code = await proc.wait()
        except BaseException:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        finally:
            on_start(None)
    if code == 0 and done is not None:
        return done
    raise WorkerFailed(error or _exit_reason(code, log_path))


async def _read_events(proc, on_event) -> tuple[dict[str, Any] | None, str | None]:
    done, error = None, None
    assert proc.stdout is not None
    async for raw in proc.stdout:
        try:
            event = json.loads(raw)
        except ValueError:  # not ours: ignore
            continue
        if event.get("event") == "done":
            done = event
        elif event.get("event") == "error":
            error = event.get("error")
        else:
            await on_event(event)
    return done, error


def _exit_reason(code: int | None, log_path: Path) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the training worker was killed ({name})"
    tail = ""
    with contextlib.suppress(OSError):
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    return f"the training worker exited with code {code}" + (f": {tail}" if tail else "")


# --- the worker's entry point ---------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    events = _claim_stdout()
    if len(argv) != 1:
        events.emit("error", error="usage: python -m bot.training_worker SPEC.json")
        return 2
    try:
        spec = WorkerSpec.read(Path(argv[0]))
        _lower_priority(spec)
        outcome = run(spec, events)
    except Exception as exc:  # the parent records the run as failed with this line
        import traceback

        traceback.print_exc()
        events.emit("error", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        return 1
    events.emit("done", **outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
