"""The parent's side of a training run's worker process: the run folder and its spec, the
worker's events as progress steps, and cleaning up after it.

The run folder is `DATA_DIR/training/run-NNNNN/`: the train, dev and eval rows as JSON lines,
`spec.json` and the worker's log (kept when the run fails). `bot.training_worker` is the
worker itself and `bot.training_worker.run_worker` spawns and watches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

from bot.learning.data import Dataset
from bot.learning.results import Progress


async def write_spec(
    workdir: Path,
    data: Dataset,
    *,
    labels: list[str],
    folder: Path,
    config: dict[str, Any],
    active: Any,
    card: dict[str, Any],
    device: str,
    threads: int,
    feature_cache: str | None = None,
) -> Path:
    """Write the rows and the worker's spec into `workdir`; returns the spec's path."""
    from bot.training_worker import WorkerSpec, write_rows

    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    spec = WorkerSpec(
        train_file=await asyncio.to_thread(write_rows, workdir / "train.jsonl", data.train),
        eval_file=await asyncio.to_thread(write_rows, workdir / "eval.jsonl", data.eval),
        dev_file=(
            await asyncio.to_thread(write_rows, workdir / "dev.jsonl", data.dev)
            if data.dev
            else None
        ),
        labels=labels,
        out_dir=str(folder),
        config={k: v for k, v in config.items() if k != "postprocess"},
        postprocess=bool(config.get("postprocess")),
        active_model=None if active is None else str(active.folder),
        card=card,
        device=device,
        threads=threads,
        feature_cache=feature_cache,
    )
    return spec.write(workdir / "spec.json")


def progress_of(event: dict[str, Any], version: str) -> Progress | None:
    """A worker event as a `Progress` step (None for events the admin needn't see)."""
    kind = event.get("event")
    if kind == "start":
        return Progress("training", version, train_rows=event.get("train_rows"))
    if kind == "epoch":
        epoch, epochs = event["epoch"], event["epochs"]
        return Progress("training", version, epoch, epochs, event.get("dev_macro_f1"))
    if kind == "evaluating":
        return Progress("evaluating", version)
    return None


def cleanup(workdir: Path, *, keep_log: bool) -> None:
    """Delete the run's data files; keep the worker log of a failed run for the operator."""
    for name in ("train.jsonl", "eval.jsonl", "dev.jsonl", "spec.json"):
        with contextlib.suppress(OSError):
            (workdir / name).unlink()
    if not keep_log:
        shutil.rmtree(workdir, ignore_errors=True)
