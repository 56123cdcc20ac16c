"""Training and evaluation data for a retrain, and the data manifest of the model card.

Training rows: the bootstrap corpus (its own row weights, about 1 each) plus every resolved
label's `train` split, each weighing `USER_LABEL_WEIGHT`. Evaluation rows: the fixed `eval`
split of resolved labels, plus a fixed slice of the bootstrap corpus while fewer than
`EVAL_MIN_USER_ROWS` user labels are in it. docs/learning.md explains the choices.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.learning.errors import LearningError
from classifier.bootstrap_corpus import (
    bootstrap_dev_slice,
    bootstrap_eval_slice,
    load_bootstrap_corpus,
)
from storage import repositories as repo

# A resolved label from the product's own people counts this many times in the training loss
# (a bootstrap corpus row averages 1): 100 user labels weigh like 2,000 corpus tweets, about 5%
# of the corpus. Their labels are in-domain, the corpus is not (docs/learning.md);
# `benchmarks/active_learning.py --weight W` measures other choices.
USER_LABEL_WEIGHT = 20.0
# While the eval split holds fewer user labels than this, a fixed bootstrap slice is added to it,
# so the gate does not decide on a handful of examples.
EVAL_MIN_USER_ROWS = 200

Corpus = tuple[Sequence[str], Sequence[str]] | tuple[Sequence[str], Sequence[str], Sequence[float]]
CorpusProvider = Callable[[], Corpus]
Row = dict[str, Any]


@dataclass
class Dataset:
    train: list[Row]
    eval: list[Row]
    manifest: dict[str, Any]
    user_rows: int
    dev: list[Row] = field(default_factory=list)


# --- corpus providers ---------------------------------------------------------------------------
def default_base_corpus() -> Corpus:
    """The bootstrap corpus the first model was trained on, without its dev and eval slices."""
    return load_bootstrap_corpus(include_dev=False)


def default_dev_slice() -> Corpus:
    """The bootstrap build's dev slice: a retrain early-stops on the same rows it did."""
    return bootstrap_dev_slice()


def default_eval_slice() -> Corpus:
    """The fixed slice of the bootstrap corpus held out for evaluation."""
    return bootstrap_eval_slice()


@dataclass(frozen=True)
class LearningOptions:
    """How the learning loop trains. The defaults are production's; tests pass a tiny corpus and
    few epochs (`Runtime.open(settings, learning_options=...)`, `bot.app.serve(...)` likewise).

    `dev_slice` None: the bootstrap build's dev slice with the default corpus (a retrain without
    new labels then reproduces the bootstrap recipe), else `train` carves a dev split from the
    training rows. `train_overrides`: `TrainRecipe` fields applied over the active model's own
    recipe. `worker_threads`: torch threads of the training worker (default: all cores but one).
    """

    base_corpus: CorpusProvider = default_base_corpus
    eval_slice: CorpusProvider = default_eval_slice
    dev_slice: CorpusProvider | None = None
    train_overrides: Mapping[str, Any] = field(default_factory=dict)
    user_label_weight: float = USER_LABEL_WEIGHT
    eval_min_user_rows: int = EVAL_MIN_USER_ROWS
    worker_threads: int | None = None
    # After each retrain (`bot.learning.checks`): folds of the suspicious-label search (0: off)
    # and the learning curve; each costs extra trainings of the candidate's kind.
    review_folds: int = 4
    learning_curve: bool = True

    @property
    def dev_provider(self) -> CorpusProvider | None:
        if self.dev_slice is not None or self.base_corpus is not default_base_corpus:
            return self.dev_slice
        return default_dev_slice


async def collect(
    sessionmaker: async_sessionmaker[AsyncSession],
    options: LearningOptions,
    labels: list[str],
    *,
    with_train: bool = True,
    examples: list[Any] | None = None,
) -> Dataset:
    """Training and evaluation rows, and the data manifest for the model card.

    `with_train=False` (a rollback's check) skips loading the bootstrap corpus. `examples`: the
    resolved labels (`bot.learning.resolution`); None reads the plain majority labels.
    """
    if examples is None:
        async with sessionmaker() as session:
            examples = await repo.labelled_examples(session)
    base = await asyncio.to_thread(base_rows, options.base_corpus, labels) if with_train else []
    data = await asyncio.to_thread(assemble, examples, base, labels, options, with_train)
    dev = options.dev_provider
    if with_train and dev is not None:
        data.dev = await asyncio.to_thread(slice_rows, dev, labels)
        data.manifest["dev"] = {"rows": len(data.dev), "source": "bootstrap dev slice"}
    return data


def unpack(corpus: Any) -> tuple[list[str], list[str], list[float] | None]:
    """Accept (texts, labels), (texts, labels, weights) or an object with those attributes."""
    if hasattr(corpus, "texts"):
        weights = getattr(corpus, "weights", None)
        return list(corpus.texts), list(corpus.labels), None if weights is None else list(weights)
    texts, labels, *rest = corpus
    return list(texts), list(labels), (list(rest[0]) if rest and rest[0] is not None else None)


# --- rows ---------------------------------------------------------------------------------------
def base_rows(base_corpus: CorpusProvider, labels: list[str]) -> list[Row]:
    """The bootstrap corpus as training rows (its own per-row weights and sources)."""
    corpus = base_corpus()
    texts, gold, weights = unpack(corpus)
    sources = getattr(corpus, "sources", None) or ["bootstrap"] * len(texts)
    weights = weights or [1.0] * len(texts)
    known = set(labels)
    return [
        {"text": t, "label": y, "weight": float(w), "source": src}
        for t, y, w, src in zip(texts, gold, weights, sources, strict=True)
        if y in known
    ]


def slice_rows(provider: CorpusProvider, labels: list[str], **extra: Any) -> list[Row]:
    """A held-out slice (dev or eval) as rows, restricted to the model's labels."""
    texts, gold, _ = unpack(provider())
    known = set(labels)
    return [
        {"text": t, "label": y, **extra} for t, y in zip(texts, gold, strict=True) if y in known
    ]


def split_user_labels(
    examples: list[Any], labels: list[str], weight: float
) -> tuple[list[Row], list[Row], int]:
    """Resolved labels as (train rows, eval rows, how many were ignored: unknown label)."""
    known = set(labels)
    user_train, user_eval, ignored = [], [], 0
    for ex in examples:
        if ex.label not in known:
            ignored += 1
            continue
        source = ex.sources[0] if len(ex.sources) == 1 else "+".join(ex.sources)
        row = {"text": ex.text, "label": ex.label, "source": source}
        if ex.split == "train":  # weighed by how sure the resolution is (`ex.weight`)
            user_train.append({**row, "weight": weight * ex.weight, "message_id": ex.message_id})
        else:
            user_eval.append(row)
    return user_train, user_eval, ignored


def assemble(
    examples: list[Any],
    base: list[Row],
    labels: list[str],
    options: LearningOptions,
    with_train: bool,
) -> Dataset:
    """Training rows (bootstrap + user `train` split), eval rows and the data manifest."""
    weight = options.user_label_weight
    user_train, user_eval, ignored = split_user_labels(examples, labels, weight)
    train = list(base) + user_train
    eval_rows = list(user_eval)
    if len(user_eval) < options.eval_min_user_rows:
        eval_rows += slice_rows(options.eval_slice, labels, source="bootstrap")
    # A run's error is recorded in `training_runs.error` as written here.
    if with_train and not train:
        raise LearningError("no training data: the bootstrap corpus and labels are empty")
    if not eval_rows:
        raise LearningError("no evaluation data: the eval split is empty")
    manifest = {
        "train": counts(train),
        "eval": {**counts(eval_rows), "sha256": digest(eval_rows)},
        "user_label_weight": weight,
        "user_labels": {"train": len(user_train), "eval": len(user_eval), "ignored": ignored},
        "bootstrap_eval_slice": len(eval_rows) - len(user_eval),
    }
    return Dataset(train, eval_rows, manifest, len(user_train))


# --- the manifest -------------------------------------------------------------------------------
def digest(rows: Sequence[Row]) -> str:
    """SHA-256 of the rows' (text, label) pairs: two cards with the same hash used the same set."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row["text"], row["label"]], ensure_ascii=False).encode())
    return h.hexdigest()


def counts(rows: list[Row]) -> dict[str, Any]:
    """Rows per source and per label within each source (the model card's data manifest)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        per[row["source"]][row["label"]] += 1
    return {
        "rows": len(rows),
        "rows_per_label": dict(Counter(r["label"] for r in rows)),
        "rows_per_source": {source: sum(c.values()) for source, c in sorted(per.items())},
        "rows_per_source_and_label": {s: dict(sorted(c.items())) for s, c in sorted(per.items())},
    }
