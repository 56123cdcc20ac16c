"""Every labelled message's label, resolved by the weighted posterior of its labels.

Voters (`voter_of`): each annotator (ANNOTATOR_IDS, ADMIN_IDS, or anyone who labelled through
the queue) by Telegram id; `inline`, the inline buttons of everyone else, pooled into one source
with its own reliability; `import`; and the active model (its latest guess on the message), a
weak voter. Dawid–Skene EM (`bot.learning.reliability`) estimates how reliable each one is and
gives each message the label with the highest posterior, so a tie between a careful and a
careless annotator is resolved in the careful one's favour instead of dropped. Sources an admin
excluded (`/annotator exclude`) do not vote. A settled review (`/review`: Keep / Change to …) is
the message's label, with full confidence.

Training weighs each example by its posterior (`LabelledExample.confidence`), and a label
waiting for review by `REVIEW_PENDING_WEIGHT` of that (`LabelledExample.weight`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.learning.reliability import Resolution, Vote, dawid_skene
from bot.learning.served import ServedModel
from storage import repositories as repo

INLINE = "inline"  # inline buttons of people who are not annotators, one source
IMPORT = "import"  # `sentibot import` labels
REVIEW_PENDING_WEIGHT = 0.25  # a label the data contradicts counts this much until reviewed


def voter_of(row: repo.LabelRow, annotators: Collection[int]) -> str:
    """Whose vote a label row is: an annotator's id, `inline` or `import`."""
    if row.user_id is None:
        return IMPORT
    if row.user_id in annotators or row.source == "queue":
        return str(row.user_id)
    return INLINE


@dataclass
class Resolved:
    """The resolution of all labels: examples to train on and the voters' reliability."""

    examples: list[repo.LabelledExample]
    reliability: Resolution
    labels_per_voter: dict[str, int]  # every voter's label count (excluded ones too)
    excluded: set[str]
    flagged: set[str]
    # Per person (an id, or `import`): their labels, for Krippendorff's alpha and kappa.
    by_person: dict[str, dict[int, str]] = field(default_factory=dict)
    voter_people: dict[str, int] = field(default_factory=dict)  # people behind each voter


class LabelResolver:
    """Reads the labels and resolves them (in a thread: EM over thousands of labels)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        served: ServedModel,
        annotators: Collection[int],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.served = served
        self.annotators = set(annotators)

    async def resolve(self) -> Resolved:
        async with self.sessionmaker() as session:
            rows = await repo.label_rows(session)
            guesses = await repo.model_guesses(session, await self.served.active_version(session))
            states = await repo.annotator_states(session)
            decided, pending = await repo.review_states(session)
        excluded = {s for s, state in states.items() if state.excluded}
        flagged = {s for s, state in states.items() if state.flagged_at is not None}
        return await asyncio.to_thread(
            resolve_rows,
            rows,
            guesses,
            self.served.labels,
            self.annotators,
            excluded=excluded,
            flagged=flagged,
            decided=decided,
            pending=pending,
        )


def resolve_rows(
    rows: Sequence[repo.LabelRow],
    guesses: Mapping[int, Mapping[str, float]],
    labels: Sequence[str],
    annotators: Collection[int],
    *,
    excluded: Collection[str] = (),
    flagged: Collection[str] = (),
    decided: Mapping[int, str] | None = None,
    pending: Collection[int] = (),
) -> Resolved:
    """The pure part of `LabelResolver.resolve` (benchmarks call it directly)."""
    decided = decided or {}
    known = set(labels)
    per_message: dict[int, list[tuple[str, repo.LabelRow]]] = defaultdict(list)
    counts: Counter = Counter()
    people: dict[str, set] = defaultdict(set)
    by_person: dict[str, dict[int, str]] = defaultdict(dict)
    for row in rows:
        voter = voter_of(row, annotators)
        counts[voter] += 1
        people[voter].add(row.user_id)
        if voter in excluded or row.label not in known:
            continue
        per_message[row.message_id].append((voter, row))
        by_person[IMPORT if row.user_id is None else str(row.user_id)][row.message_id] = row.label
    votes = [Vote(mid, voter, row.label) for mid, rs in per_message.items() for voter, row in rs]
    model = {
        mid: [float(guesses[mid].get(label, 0.0)) for label in labels]
        for mid in per_message
        if guesses.get(mid)
    }
    result = dawid_skene(votes, labels, model=model)
    examples = [
        _example(mid, per_message[mid], result, decided.get(mid), mid in pending)
        for mid in sorted(per_message)
        if mid in result.posteriors
    ]
    return Resolved(
        examples,
        result,
        dict(counts),
        set(excluded),
        set(flagged),
        dict(by_person),
        {voter: len(ids) for voter, ids in people.items()},
    )


def _example(
    mid: int,
    votes: list[tuple[str, repo.LabelRow]],
    result: Resolution,
    decided: str | None,
    pending: bool,
) -> repo.LabelledExample:
    label, confidence = result.label_of(mid)
    if decided is not None:  # a reviewer settled it
        label, confidence = decided, 1.0
    rows = [row for _, row in votes]
    agreeing = [row for row in rows if row.label == label]
    weight = confidence * (REVIEW_PENDING_WEIGHT if pending and decided is None else 1.0)
    return repo.LabelledExample(
        message_id=mid,
        text=rows[0].text,
        label=label,
        split=repo.split_of(mid),
        sources=tuple(sorted({row.source for row in agreeing} or {"review"})),
        n_labels=len(rows),
        agreement=len(agreeing) / len(rows),
        last_labelled_at=max(row.updated_at for row in rows),
        confidence=confidence,
        weight=weight,
    )
