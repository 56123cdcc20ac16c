"""Predictor: micro-batching, worker thread, hot swap, odd inputs."""

import asyncio
import threading
import time

import numpy as np
import pytest

from classifier.artifacts import load_model
from classifier.predictor import Prediction, Predictor


@pytest.fixture(scope="module")
def classifier(tiny_model_dir):
    return load_model(tiny_model_dir)


class Recording:
    """Wraps a Classifier, recording batch sizes and the thread each forward ran on."""

    def __init__(self, inner, delay=0.0, tag=""):
        self.inner, self.delay, self.tag = inner, delay, tag
        self.labels = inner.labels
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.started = threading.Event()

    def predict_proba(self, texts):
        self.started.set()
        self.batches.append(len(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return self.inner.predict_proba(texts)


async def test_results_carry_label_confidence_probs_version(classifier):
    async with Predictor(classifier, "v0001") as predictor:
        [pred] = await predictor.predict(["I love this, it is great!"])
    assert isinstance(pred, Prediction)
    assert pred.label == "positive" and pred.model_version == "v0001"
    assert set(pred.probs) == {"negative", "neutral", "positive"}
    assert pred.confidence == pytest.approx(max(pred.probs.values()))
    assert sum(pred.probs.values()) == pytest.approx(1.0, abs=1e-5)


async def test_matches_direct_prediction(classifier):
    texts = ["I hate it", "The store opens at nine", "great :)"]
    async with Predictor(classifier, "v1") as predictor:
        preds = await predictor.predict(texts)
    expected = classifier.predict_proba(texts)
    got = np.array([[p.probs[label] for label in classifier.labels] for p in preds])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("text", ["", "   \n", "😀😡👍", "x" * 100_000, "word " * 20_000])
async def test_odd_texts_get_predictions(classifier, text):
    async with Predictor(classifier, "v1") as predictor:
        [pred] = await predictor.predict([text])
    assert pred.label in classifier.labels and 0 < pred.confidence <= 1


async def test_concurrent_callers_are_batched_off_the_loop(classifier):
    recording = Recording(classifier)
    async with Predictor(recording, "v1", max_batch=64, max_wait_ms=50) as predictor:
        texts = [f"message {i} is great" for i in range(200)]
        results = await asyncio.gather(*(predictor.predict([t]) for t in texts))
    assert len(results) == 200 and all(len(r) == 1 for r in results)
    assert sum(recording.batches) == 200
    assert max(recording.batches) == 64 and len(recording.batches) <= 5
    assert recording.threads and all(name.startswith("predictor") for name in recording.threads)
    assert threading.main_thread().name not in recording.threads


async def test_event_loop_keeps_running_during_a_slow_forward(classifier):
    recording = Recording(classifier, delay=0.3)
    async with Predictor(recording, "v1") as predictor:
        task = asyncio.create_task(predictor.predict(["slow"]))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await task
    assert ticks >= 10  # the loop kept ticking while the forward pass slept in its thread


async def test_max_wait_flushes_a_partial_batch(classifier):
    recording = Recording(classifier)
    async with Predictor(recording, "v1", max_batch=1000, max_wait_ms=20) as predictor:
        started = time.perf_counter()
        await predictor.predict(["only one"])
        elapsed = time.perf_counter() - started
    assert recording.batches == [1]
    assert elapsed < 1.0


async def test_swap_in_flight_batch_finishes_on_old_model(classifier):
    old = Recording(classifier, delay=0.3, tag="old")
    new = Recording(classifier, tag="new")
    predictor = Predictor(old, "v1", max_wait_ms=0)
    async with predictor:
        first = asyncio.create_task(predictor.predict(["before swap"]))
        await asyncio.to_thread(old.started.wait, 5)  # the old model's batch is running
        predictor.swap(new, "v2")
        assert predictor.version == "v2" and predictor.classifier is new
        second = await predictor.predict(["after swap"])
        [before] = await first
    assert before.model_version == "v1" and old.batches == [1]
    assert second[0].model_version == "v2" and new.batches == [1]


async def test_empty_list_and_bare_string(classifier):
    async with Predictor(classifier, "v1") as predictor:
        assert await predictor.predict([]) == []
        with pytest.raises(TypeError):
            await predictor.predict("a bare string")


async def test_predict_after_close_restarts_lazily(classifier):
    predictor = Predictor(classifier, "v1")
    await predictor.start()
    await predictor.close()
    [pred] = await predictor.predict(["restarts lazily"])
    assert pred.model_version == "v1"
    await predictor.close()


async def test_errors_reach_the_caller(classifier):
    class Broken:
        labels = classifier.labels

        def predict_proba(self, texts):
            raise RuntimeError("boom")

    async with Predictor(Broken(), "v1") as predictor:
        with pytest.raises(RuntimeError, match="boom"):
            await predictor.predict(["x"])
        predictor.swap(classifier, "v2")
        [pred] = await predictor.predict(["still serving"])
    assert pred.model_version == "v2"


async def test_a_malformed_model_output_fails_the_batch_not_the_predictor(classifier):
    class WrongShape:
        labels = classifier.labels

        def predict_proba(self, texts):
            return np.full((len(texts), 2), 0.5)  # 2 columns for 3 labels

    async with Predictor(WrongShape(), "v1") as predictor:
        with pytest.raises(RuntimeError, match="shape"):
            await asyncio.wait_for(predictor.predict(["x"]), 5)
        predictor.swap(classifier, "v2")
        [pred] = await asyncio.wait_for(predictor.predict(["still serving"]), 5)
    assert pred.model_version == "v2"


async def test_worker_thread_count_does_not_leak_to_the_loop_thread(classifier):
    import torch

    before = torch.get_num_threads()
    async with Predictor(classifier, "v1") as predictor:
        await predictor.predict(["one thread in the worker"])
    assert torch.get_num_threads() == before


async def test_from_folder_uses_the_folder_name_as_version(tiny_model_dir):
    async with Predictor.from_folder(tiny_model_dir, max_batch=8) as predictor:
        [pred] = await predictor.predict(["Horrible service, never again"])
    assert pred.model_version == "v0001" and pred.label == "negative"
    assert predictor.max_batch == 8
