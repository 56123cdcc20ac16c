"""Shared fixtures for the whole suite.

- `tiny_training_data`: (texts, labels) — a few dozen built-in sentences, 3 labels.
- `tiny_model_dir`: a real negative/neutral/positive model trained on them (about a second) and
  saved with `save_model` as `<tmp>/models/v0001`; `tiny_model_dir.parent` works as MODEL_DIR.
  Session-scoped: treat the folder as read-only (copy it with `shutil.copytree` to modify it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_LABELS = ("negative", "neutral", "positive")

_POSITIVE = [
    "I love this, it is great!",
    "What a wonderful day :)",
    "This is awesome, thank you so much",
    "Great job team, really happy with it",
    "Best movie ever, loved it 😍",
    "So happy and excited right now!",
    "Excellent service, very friendly staff",
    "Thanks, that was really helpful 👍",
    "Beautiful work, I am impressed",
    "Fantastic news, congratulations!",
    "I like it a lot, good stuff",
    "Amazing food and a lovely place",
]
_NEGATIVE = [
    "I hate this, it is terrible.",
    "What an awful day :(",
    "This is the worst, so disappointing",
    "Horrible service, never again",
    "The movie was boring and bad 😡",
    "I am so angry and upset",
    "Terrible food, rude staff",
    "This broke after one day, useless",
    "Worst experience of my life",
    "Sad and annoyed, nothing works",
    "I dislike it, very poor quality",
    "Disgusting and ugly, hate it",
]
_NEUTRAL = [
    "The meeting is at 3pm tomorrow.",
    "I am taking the bus to work",
    "The report has ten pages",
    "It is Tuesday today",
    "Send me the file please",
    "The store opens at nine",
    "We moved the call to Monday",
    "The train leaves from platform two",
    "He is reading the newspaper",
    "The package arrives on Friday",
    "Please check the attached document",
    "The office is on the second floor",
]


@pytest.fixture(scope="session")
def tiny_training_data() -> tuple[list[str], list[str]]:
    texts = _POSITIVE + _NEGATIVE + _NEUTRAL
    labels = (
        ["positive"] * len(_POSITIVE) + ["negative"] * len(_NEGATIVE) + ["neutral"] * len(_NEUTRAL)
    )
    return texts, labels


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_training_data) -> Path:
    from classifier.artifacts import save_model
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

    texts, labels = tiny_training_data
    recipe = TrainRecipe(epochs=30, seed=0, embedding_dim=16, bigram_buckets=256, patience=30)
    result = train(texts, labels, list(TINY_LABELS), recipe, run=RunSettings(progress=False))
    root = tmp_path_factory.mktemp("tiny_models") / "models"
    return save_model(result.classifier, root / "v0001", result.card("train"))
