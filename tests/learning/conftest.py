"""Fixtures for the learning loop: a real SQLite file, the tiny model as v0001, a running
Predictor and a `LearningService` whose corpus is the tiny training data (never the 38k-row
bootstrap corpus: too slow for tests). The bot of the end-to-end tests here trains on it too
(`learning_options`, passed to `serve` by `tests.e2e.conftest.start_bot`)."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings
from bot.learning.data import LearningOptions
from tests.e2e.conftest import bot, fake_telegram, make_settings, start_bot  # noqa: F401

# Fast worker runs: the tiny model's own recipe, fewer epochs.
TRAIN_OVERRIDES = {"epochs": 30, "patience": 30, "embedding_dim": 16, "bigram_buckets": 256}

POSITIVE_WORDS = ["love", "great", "wonderful", "awesome", "happy", "fantastic", "amazing"]
NEGATIVE_WORDS = ["hate", "awful", "terrible", "horrible", "angry", "worst", "disgusting"]
NEUTRAL_WORDS = ["meeting", "bus", "report", "tuesday", "file", "platform", "package"]


def chat_texts(n: int, seed: int = 1) -> list[tuple[str, str]]:
    """`n` (text, true label) chat lines, different from the tiny corpus, built from its words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = ("positive", "negative", "neutral")[i % 3]
        words = {"positive": POSITIVE_WORDS, "negative": NEGATIVE_WORDS, "neutral": NEUTRAL_WORDS}
        word = rng.choice(words[label])
        tag = _letters(i)  # the texts stay distinct once the queue's duplicate check drops digits
        out.append((f"message {i} {tag}: it is {word} {rng.choice(words[label])} today", label))
    return out


def _letters(n: int) -> str:
    """0 → "qa", 1 → "qb", 26 → "qba": a tag that is never a word of the tiny corpus."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
        if n == 0:
            return "q" + out


def tiny_options(tiny_training_data, **overrides) -> LearningOptions:
    """Train on the tiny corpus (evaluate on it too), few epochs, one worker thread."""
    texts, labels = tiny_training_data
    values = {
        "base_corpus": lambda: (texts, labels),
        "eval_slice": lambda: (texts, labels),
        "train_overrides": TRAIN_OVERRIDES,
        "worker_threads": 1,
    }
    return LearningOptions(**{**values, **overrides})


@pytest.fixture
def learning_options(tiny_training_data) -> LearningOptions:
    """What the bot of `start_bot` trains with here."""
    return tiny_options(tiny_training_data)


def learning_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "data_dir": tmp_path / "data",
        "model_dir": tmp_path / "data" / "models",
        "device": "cpu",
        "retrain_interval_minutes": 0,
        "retrain_min_new_labels": 5,
        "promotion_tolerance": 0.2,  # lenient: the gate itself is unit-tested
        "promotion_max_recall_drop": 0.5,
        "labels_per_item": 1,
        # The queue's diversity rules have their own tests; the others see the plain order.
        "queue_max_per_author_hour": 0,
        "queue_similarity": 1.01,
        "admin_ids": "1",
        "annotator_ids": "2,3",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class LearningEnv:
    settings: Settings
    sessionmaker: object
    predictor: object
    learning: object
    engine: object

    async def add_messages(self, items: list[tuple[str, str]], chat_id: int = 100) -> list[int]:
        """Score and store chat messages like the bot does; returns their messages.id."""
        from storage import repositories as repo

        preds = await self.predictor.predict([t for t, _ in items])
        ids = []
        async with self.sessionmaker.begin() as session:
            for i, ((text, _), p) in enumerate(zip(items, preds, strict=True)):
                rec = await repo.record_scored_message(
                    session,
                    chat_id=chat_id,
                    chat_type="private",
                    user_id=chat_id,
                    text=text,
                    model_version=p.model_version,
                    label=p.label,
                    confidence=p.confidence,
                    probs=p.probs,
                    telegram_message_id=1000 + i,
                )
                ids.append(rec.message_id)
        return ids


async def open_env(tmp_path: Path, tiny_model_dir: Path, tiny_training_data, **kw) -> LearningEnv:
    from bot.learning.service import LearningService
    from classifier.artifacts import load_model
    from classifier.card import read_card
    from classifier.predictor import Predictor
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker, upgrade_database

    options = {k: kw.pop(k) for k in ("base_corpus", "train_overrides") if k in kw}
    settings = learning_settings(tmp_path, **kw)
    folder = settings.models_path / "v0001"
    shutil.copytree(tiny_model_dir, folder)
    await upgrade_database(settings.db_url)
    engine = create_engine(settings.db_url)
    sessionmaker = create_sessionmaker(engine)
    card = read_card(folder)
    backbone = json.loads((folder / "config.json").read_text())["backbone"]
    async with sessionmaker.begin() as session:
        await repo.register_model_version(
            session,
            "v0001",
            folder=str(folder),
            backbone=backbone,
            metrics=card.summary_metrics(),
            manifest=card.summary_manifest(),
        )
        await repo.activate_model_version(session, "v0001")
    predictor = Predictor(load_model(folder), "v0001", max_wait_ms=0.5)
    await predictor.start()
    learning = LearningService.create(
        settings, sessionmaker, predictor, options=tiny_options(tiny_training_data, **options)
    )
    return LearningEnv(settings, sessionmaker, predictor, learning, engine)


@pytest.fixture
async def env(tmp_path, tiny_model_dir, tiny_training_data):
    e = await open_env(tmp_path, tiny_model_dir, tiny_training_data)
    yield e
    await e.learning.close()
    await e.predictor.close()
    await e.engine.dispose()
