"""Inter-annotator agreement: Cohen's kappa for every pair of annotators.

With LABELS_PER_ITEM ≥ 2 the labeling queue shows an item to several people; `/status` then shows
how often each pair agrees beyond chance on the items both labelled (`bot.texts.kappa_words`
puts it in words). Pure Python, no imports beyond the standard library.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class PairAgreement:
    """Agreement of two annotators on the `n` items both labelled."""

    annotator_a: int
    annotator_b: int
    n: int
    observed: float  # share of items with the same label
    kappa: float | None  # None: undefined (no shared items, or chance agreement is certain)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two label sequences over the same items.

    kappa = (p_o - p_e) / (1 - p_e): p_o the observed agreement, p_e the agreement expected by
    chance from each annotator's own label frequencies. Returns None when it is undefined: no
    items, or p_e == 1 (both annotators used one and the same label for everything).
    """
    if len(a) != len(b):
        raise ValueError("both annotators must label the same items")
    n = len(a)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    freq_a, freq_b = Counter(a), Counter(b)
    p_e = sum(freq_a[label] * freq_b.get(label, 0) for label in freq_a) / (n * n)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def pairwise_agreement(
    labels: Mapping[int, Mapping[Hashable, Hashable]], *, min_items: int = 1
) -> list[PairAgreement]:
    """kappa for each pair of annotators: `labels[annotator][item] = label`.

    Pairs sharing fewer than `min_items` items are left out; pairs come sorted by annotator ids.
    """
    result = []
    for ann_a, ann_b in combinations(sorted(labels), 2):
        shared = sorted(set(labels[ann_a]) & set(labels[ann_b]), key=repr)
        if len(shared) < min_items:
            continue
        seq_a = [labels[ann_a][item] for item in shared]
        seq_b = [labels[ann_b][item] for item in shared]
        observed = sum(x == y for x, y in zip(seq_a, seq_b, strict=True)) / len(shared)
        result.append(
            PairAgreement(
                annotator_a=ann_a,
                annotator_b=ann_b,
                n=len(shared),
                observed=observed,
                kappa=cohen_kappa(seq_a, seq_b),
            )
        )
    return result


@dataclass(frozen=True)
class Alpha:
    """Krippendorff's alpha (nominal) over the `items` with at least two labels."""

    value: float | None  # None: undefined (no such items, or one label used throughout)
    items: int
    labels: int  # pairable labels (on those items)


def krippendorff_alpha(labels: Mapping[int, Mapping[Hashable, Hashable]]) -> Alpha:
    """Krippendorff's alpha for nominal data: `labels[annotator][item] = label`, any overlap.

    alpha = 1 - D_o / D_e over the coincidence matrix: each item with m ≥ 2 labels adds, for
    every ordered pair of its labels from different annotators, 1 / (m - 1) to o[c, k].
    D_o is the share of off-diagonal coincidences, D_e the same expected from the label totals
    n_c: alpha = 1 - (n - 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k. Items with one label are left out.
    """
    by_item: dict[Hashable, list[Hashable]] = {}
    for per_item in labels.values():
        for item, label in per_item.items():
            by_item.setdefault(item, []).append(label)
    coincidence: Counter = Counter()
    items = 0
    for values in by_item.values():
        m = len(values)
        if m < 2:
            continue
        items += 1
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    coincidence[(c, k)] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (c, _), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    disagree = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if items == 0 or expected <= 0:
        return Alpha(None, items, round(n))
    return Alpha(1.0 - (n - 1) * disagree / expected, items, round(n))
