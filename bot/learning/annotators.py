"""The annotator list (/status, `sentibot labels annotators`), the "looks unreliable" flag, and
an admin's `/annotator exclude|include`.

Each label source is listed with its label count, reliability (Dawid–Skene: the expected share
of its labels that are right) and agreement with the others (the share of its labels that match
another person's label on the same message). A source with at least `FLAG_MIN_LABELS` labels
whose reliability is more than `FLAG_GAP` below the median of the others (the model's, when it
is the only other one) is flagged: the admins are told once (`annotator_states.flagged_at`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.learning.agreement import Alpha, PairAgreement, krippendorff_alpha, pairwise_agreement
from bot.learning.reliability import MODEL
from bot.learning.resolution import IMPORT, INLINE, Resolved
from storage import repositories as repo

FLAG_MIN_LABELS = 20
FLAG_GAP = 0.3


@dataclass(frozen=True)
class AnnotatorRow:
    """One label source in the list."""

    source: str  # a Telegram user id as text, `inline`, `import` or `model`
    labels: int
    reliability: float | None  # None: excluded (not estimated)
    agreement: float | None  # None: shares no message with another person
    shared: int  # its labels on messages someone else labelled too
    people: int  # people behind the source (`inline` pools several)
    excluded: bool = False
    flagged: bool = False

    @property
    def user_id(self) -> int | None:
        return int(self.source) if self.source.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class AnnotatorList:
    """Every source, Krippendorff's alpha over all people, kappa per pair, names."""

    rows: list[AnnotatorRow]
    alpha: Alpha
    pairs: list[PairAgreement]
    names: dict[int, tuple[str | None, str | None]]


def annotator_list(resolved: Resolved) -> AnnotatorList:
    """The list from a resolution (names are filled in by `AnnotatorDesk.list`)."""
    voters = resolved.reliability.voters
    agree, shared = _agreement(resolved.by_person)
    rows = []
    for source, n in sorted(resolved.labels_per_voter.items(), key=lambda kv: (-kv[1], kv[0])):
        people = [source] if source not in (INLINE,) else []
        hits = sum(agree.get(p, 0) for p in people) if people else None
        total = sum(shared.get(p, 0) for p in people) if people else 0
        estimate = voters.get(source)
        rows.append(
            AnnotatorRow(
                source,
                n,
                None if estimate is None else estimate.accuracy,
                (hits / total) if hits is not None and total else None,
                total,
                resolved.voter_people.get(source, 1),
                source in resolved.excluded,
                source in resolved.flagged,
            )
        )
    model = voters.get(MODEL)
    if model is not None:
        rows.append(AnnotatorRow(MODEL, model.labels, model.accuracy, None, 0, 0))
    people = {p: v for p, v in resolved.by_person.items() if p != IMPORT}
    # Cohen's kappa for pairs of annotators only (inline users are many, with few labels each).
    ids = {int(p): v for p, v in people.items() if p in resolved.labels_per_voter}
    return AnnotatorList(rows, krippendorff_alpha(people), pairwise_agreement(ids), {})


def _agreement(by_person: dict[str, dict[int, str]]) -> tuple[dict[str, int], dict[str, int]]:
    """Per person: labels matching another person's on the same message, and labels shared."""
    per_message: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for person, labels in by_person.items():
        for mid, label in labels.items():
            per_message[mid].append((person, label))
    agree: dict[str, int] = defaultdict(int)
    shared: dict[str, int] = defaultdict(int)
    for votes in per_message.values():
        if len(votes) < 2:
            continue
        for person, label in votes:
            others = [other for p, other in votes if p != person]
            shared[person] += len(others)
            agree[person] += sum(other == label for other in others)
    return agree, shared


def to_flag(resolved: Resolved) -> list[tuple[str, float]]:
    """Sources far below the rest: (source, reliability), not excluded, not flagged before."""
    voters = resolved.reliability.voters
    people = {
        s: e.accuracy
        for s, e in voters.items()
        if s != MODEL and e.labels >= FLAG_MIN_LABELS and s not in resolved.excluded
    }
    flags = []
    for source, accuracy in people.items():
        others = [a for s, a in people.items() if s != source]
        if not others and MODEL in voters:
            others = [voters[MODEL].accuracy]
        if others and accuracy < statistics.median(others) - FLAG_GAP:
            if source not in resolved.flagged:
                flags.append((source, accuracy))
    return sorted(flags)


class AnnotatorDesk:
    """Names for the list, new flags recorded once, exclusions (audited)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def named(self, listing: AnnotatorList) -> AnnotatorList:
        ids = {row.user_id for row in listing.rows if row.user_id is not None}
        async with self.sessionmaker() as session:
            names = await repo.user_names(session, ids)
        return AnnotatorList(listing.rows, listing.alpha, listing.pairs, names)

    async def record_flags(self, resolved: Resolved) -> list[tuple[str, float]]:
        """Mark the sources to flag; returns those the admins have not been told about yet."""
        flags = to_flag(resolved)
        if not flags:
            return []
        async with self.sessionmaker.begin() as session:
            new = set(await repo.mark_flagged(session, flags))
        return [(source, accuracy) for source, accuracy in flags if source in new]

    async def set_excluded(self, source: str, excluded: bool, by: int | None) -> bool:
        """Exclude (or include again) a source; audited. False when nothing changed."""
        async with self.sessionmaker.begin() as session:
            changed = await repo.set_excluded(session, source, excluded, by)
            if changed:
                action = "annotator_exclude" if excluded else "annotator_include"
                await repo.add_audit(session, by, action, {"source": source})
        return changed

    async def find_source(self, name: str) -> str | None:
        """`123`, `@username`, `inline` or `import` → the source; None when unknown."""
        name = name.strip()
        if name.lower() in (INLINE, IMPORT):
            return name.lower()
        if name.lstrip("-").isdigit():
            return name
        if name.startswith("@") and len(name) > 1:
            async with self.sessionmaker() as session:
                uid = await repo.user_id_by_username(session, name[1:])
            return None if uid is None else str(uid)
        return None
