"""`Predictor`: serves `await predict(texts)` from asyncio code with micro-batching.

Concurrent callers' texts are gathered into one batch (up to `max_batch` texts, waiting at most
`max_wait_ms` after the first arrives); the forward pass runs in a single worker thread so the
event loop never blocks, and while it runs the next batch fills up. `swap()` replaces the model:
a batch takes its (classifier, version) pair when it starts, so batches already running finish
on the old model and the next one uses the new.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifier.model import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probs: dict[str, float]
    model_version: str


@dataclass
class _Request:
    texts: list[str]
    future: asyncio.Future


class Predictor:
    """Micro-batching async front of a `Classifier` (see module docstring)."""

    def __init__(
        self,
        classifier: Classifier,
        version: str,
        *,
        max_batch: int = 256,
        max_wait_ms: float = 2.0,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._current = (classifier, str(version))
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._pending: deque[_Request] = deque()
        self._pending_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._default_threads = _torch_threads()

    @classmethod
    def from_folder(cls, path: str | Path, device: str = "cpu", **kwargs: Any) -> Predictor:
        """Load a model folder onto `device`; the folder name is the version (`v0003`)."""
        from classifier.artifacts import load_model

        folder = Path(path)
        return cls(load_model(folder, device=device), folder.name, **kwargs)

    # --- model ------------------------------------------------------------------------------
    @property
    def classifier(self) -> Classifier:
        return self._current[0]

    @property
    def version(self) -> str:
        return self._current[1]

    def swap(self, classifier: Classifier, version: str) -> None:
        """Use `classifier` from the next batch on (running batches finish on the old one)."""
        self._current = (classifier, str(version))
        log.info("predictor now serves model %s", version)

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> Predictor:
        if self._task is None:
            self._closed = False
            self._wakeup = asyncio.Event()
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predictor")
            self._task = asyncio.create_task(self._batch_loop(), name="predictor-batcher")
        return self

    async def close(self) -> None:
        """Stop batching; pending requests still get their results first."""
        self._closed = True
        if self._task is not None:
            assert self._wakeup is not None
            self._wakeup.set()
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def __aenter__(self) -> Predictor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- serving ----------------------------------------------------------------------------
    async def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Predictions for `texts` (any strings, even empty or very long), in order."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of texts, not a single string")
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return []
        if self._task is None:
            await self.start()
        if self._closed:
            raise RuntimeError("Predictor is closed")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(texts, future))
        self._pending_texts += len(texts)
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    async def _batch_loop(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            if not self._pending:
                if self._closed:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._fill_batch()
            batch = self._take_batch()
            await self._run(batch)

    async def _fill_batch(self) -> None:
        """Wait up to max_wait after the first request for the batch to fill up."""
        assert self._wakeup is not None
        deadline = time.monotonic() + self.max_wait
        while self._pending_texts < self.max_batch and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Request]:
        batch, count = [], 0
        while self._pending and (
            not batch or count + len(self._pending[0].texts) <= self.max_batch
        ):
            request = self._pending.popleft()
            batch.append(request)
            count += len(request.texts)
        self._pending_texts -= count
        return batch

    def _forward(self, classifier: Classifier, texts: list[str]) -> np.ndarray:
        """Runs in the worker thread. Sets that thread's torch thread count for the backbone
        (the embedding model's tiny ops run faster on one thread than with a hand-off to two);
        with OpenMP the setting is per thread, so the event loop's thread is unaffected."""
        import torch

        threads = _inference_threads(classifier) or self._default_threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return classifier.predict_proba(texts)

    async def _run(self, batch: list[_Request]) -> None:
        batch = [r for r in batch if not r.future.cancelled()]
        if not batch:
            return
        classifier, version = self._current  # pinned for this batch (hot swap safety)
        texts = [t for r in batch for t in r.texts]
        loop = asyncio.get_running_loop()
        try:
            probs = await loop.run_in_executor(self._executor, self._forward, classifier, texts)
            # Inside the try: an error here must reach the callers, not kill the batch loop
            # (every later predict() would then wait forever).
            results = _split(probs, batch, classifier.labels, version)
        except Exception as exc:  # deliver the failure to every caller of this batch
            log.exception("prediction batch of %d texts failed", len(texts))
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        for request, result in zip(batch, results, strict=True):
            if not request.future.done():
                request.future.set_result(result)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _inference_threads(classifier: Classifier) -> int | None:
    try:
        from classifier.modules import get_backbone

        return get_backbone(classifier.backbone).inference_threads
    except (AttributeError, KeyError):  # a duck-typed classifier (tests) has no backbone
        return None


def _split(
    probs: np.ndarray, batch: list[_Request], labels: list[str], version: str
) -> list[list[Prediction]]:
    """Each request's share of the batch's probabilities, as Predictions."""
    total = sum(len(r.texts) for r in batch)
    if probs.shape != (total, len(labels)):
        raise RuntimeError(
            f"model {version} returned probabilities of shape {probs.shape} for {total} texts "
            f"and {len(labels)} labels"
        )
    out, start = [], 0
    for request in batch:
        end = start + len(request.texts)
        out.append(_to_predictions(probs[start:end], labels, version))
        start = end
    return out


def _to_predictions(probs: np.ndarray, labels: list[str], version: str) -> list[Prediction]:
    best = probs.argmax(axis=1)
    rows = probs.tolist()
    return [
        Prediction(
            label=labels[b],
            confidence=row[b],
            probs=dict(zip(labels, row, strict=True)),
            model_version=version,
        )
        for b, row in zip(best.tolist(), rows, strict=True)
    ]
