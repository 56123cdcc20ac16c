"""The parent's side of a training run's worker process: the run folder and its spec, spawning
and watching `python -m bot.learning.worker`, its events as progress steps, cleaning up after it.

The run folder is `DATA_DIR/training/run-NNNNN/`: the train, dev and eval rows as JSON lines,
`spec.json` and the worker's log (kept when the run fails). `TrainingWorker` is what the
`Retrainer` holds: one run at a time, killable when the bot stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.learning.data import Dataset
from bot.learning.results import Progress
from bot.learning.worker import WorkerSpec, write_rows


class TrainingWorker:
    """Runs one training run at a time in `python -m bot.learning.worker`."""

    def __init__(self, data_dir: Path, device: str, threads: int) -> None:
        self.data_dir = data_dir
        self.device = device
        self.threads = threads
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while one runs."""
        proc = self._proc
        return None if proc is None or proc.returncode is not None else proc.pid

    def kill(self) -> None:
        """Kill a running worker (its run then fails with `WorkerFailed`)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def run(
        self,
        run_id: int,
        data: Dataset,
        on_event: Callable[[dict[str, Any]], Awaitable[None]],
        **spec: Any,
    ) -> dict[str, Any]:
        """Train and score in the worker (`spec`: `write_spec`'s keywords); returns its `done`
        event or raises `WorkerFailed`. The run folder is removed, but for a failed run's log."""
        workdir = self.data_dir / "training" / f"run-{run_id:05d}"
        spec_path = await write_spec(
            workdir, data, device=self.device, threads=self.threads, **spec
        )

        def track(proc: asyncio.subprocess.Process | None) -> None:
            self._proc = proc

        try:
            done = await run_worker(spec_path, workdir / "worker.log", on_event, track)
        except BaseException:
            cleanup(workdir, keep_log=True)
            raise
        cleanup(workdir, keep_log=False)
        return done


async def write_spec(
    workdir: Path,
    data: Dataset,
    *,
    labels: list[str],
    folder: Path,
    config: dict[str, Any],
    active: Path | None,
    card: dict[str, Any],
    device: str,
    threads: int,
    feature_cache: str | None = None,
    review_folds: int = 0,
    learning_curve: bool = False,
) -> Path:
    """Write the rows and the worker's spec into `workdir`; returns the spec's path."""
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
        active_model=None if active is None else str(active),
        card=card,
        device=device,
        threads=threads,
        feature_cache=feature_cache,
        review_folds=review_folds,
        learning_curve=learning_curve,
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
    if kind in ("reviewing", "curve"):  # the checks on the labels (bot.learning.checks)
        return Progress(kind, version)
    return None


def cleanup(workdir: Path, *, keep_log: bool) -> None:
    """Delete the run's data files; keep the worker log of a failed run for the operator."""
    for name in ("train.jsonl", "eval.jsonl", "dev.jsonl", "spec.json"):
        with contextlib.suppress(OSError):
            (workdir / name).unlink()
    if not keep_log:
        shutil.rmtree(workdir, ignore_errors=True)


# --- the worker process -------------------------------------------------------------------------
# `python -m bot.learning.worker` must find the packages even when sentibot is not installed.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How a failed worker is recorded (`training_runs.error`, quoted in the admin's report).
WORKER_KILLED = "the training worker was killed ({signal})"
WORKER_EXITED = "the training worker exited with code {code}"


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
            "bot.learning.worker",
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


async def _read_events(
    proc: asyncio.subprocess.Process, on_event: Callable[[dict[str, Any]], Awaitable[None]]
) -> tuple[dict[str, Any] | None, str | None]:
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
        return WORKER_KILLED.format(signal=name)
    tail = ""
    with contextlib.suppress(OSError):
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        tail = lines[-1] if lines else ""
    return WORKER_EXITED.format(code=code) + (f": {tail}" if tail else "")
