"""The labelled dataset for training: resolved labels joined to texts, with a fixed eval split."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Label, Message
from storage.repositories.labels import majority

# 20% of labelled messages are held out for evaluation, chosen by a hash of messages.id, so an
# example never moves between train and eval when more labels arrive or a model is retrained.
EVAL_FRACTION = 0.2


def split_of(message_id: int, eval_fraction: float = EVAL_FRACTION) -> Literal["train", "eval"]:
    """`eval` when sha256("msg:<id>")'s first 8 bytes, as a fraction of 2**64, < eval_fraction."""
    digest = hashlib.sha256(f"msg:{message_id}".encode()).digest()
    return "eval" if int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction else "train"


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """A message with a resolved label, and where that label came from."""

    message_id: int
    text: str
    label: str  # the majority label
    split: Literal["train", "eval"]
    sources: tuple[str, ...]  # distinct sources of the labels that agree with `label`, sorted
    n_labels: int  # all labels of the message (agreeing or not)
    agreement: float  # share of its labels that agree with `label`
    last_labelled_at: datetime
    # How sure the weighted resolution is of `label` (its posterior probability); 1.0 for the
    # plain majority of `labelled_examples`. Training weighs the example by it.
    confidence: float = 1.0
    # Training weight factor: `confidence`, less while a /review of the label is pending.
    weight: float = 1.0

    @property
    def user_labelled(self) -> bool:
        """True when a person in Telegram (inline or queue) gave the label, not only an import."""
        return any(s != "import" for s in self.sources)


async def labelled_examples(
    session: AsyncSession,
    *,
    split: Literal["train", "eval"] | None = None,
    eval_fraction: float = EVAL_FRACTION,
) -> list[LabelledExample]:
    """Every message with a resolved label (ties left out), ordered by message id."""
    rows = await session.execute(
        select(Label.message_id, Label.label, Label.source, Label.updated_at, Message.text)
        .join(Message, Message.id == Label.message_id)
        .order_by(Label.message_id, Label.id)
    )
    grouped: dict[int, list] = defaultdict(list)
    texts: dict[int, str] = {}
    for mid, label, source, updated_at, text in rows:
        grouped[mid].append((label, source, updated_at))
        texts[mid] = text
    examples = []
    for mid, labels in grouped.items():
        winner = majority(label for label, _, _ in labels)
        if winner is None:
            continue
        agreeing = [(s, t) for label, s, t in labels if label == winner]
        example = LabelledExample(
            message_id=mid,
            text=texts[mid],
            label=winner,
            split=split_of(mid, eval_fraction),
            sources=tuple(sorted({s for s, _ in agreeing})),
            n_labels=len(labels),
            agreement=len(agreeing) / len(labels),
            last_labelled_at=max(t for _, _, t in labels),
        )
        if split is None or example.split == split:
            examples.append(example)
    return examples


async def count_new_resolved_labels(session: AsyncSession, since: datetime | None) -> int:
    """Labelled messages whose labels changed after `since` (None: all labelled messages).

    Every labelled message has a resolved label (the learning loop weighs its labels by each
    labeller's reliability, so a tie is resolved too). "Labels not yet trained on" = this count
    since the last successful training run's start (`runs.new_labels_since_last_run`).
    """
    changed = select(Label.message_id).group_by(Label.message_id)
    if since is not None:
        changed = changed.having(func.max(Label.updated_at) > since)
    return int(await session.scalar(select(func.count()).select_from(changed.subquery())) or 0)
