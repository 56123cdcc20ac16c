"""Annotator reliability: Dawid–Skene EM over every label source, the model as a weak voter.

Each voter (an annotator, the pooled inline buttons of ordinary users, imports, the active model)
has a confusion matrix π[true, said]; the true label of each item is hidden. EM alternates:

- E-step: the posterior of each item's label, ∝ prior · Π over its votes π_v[·, said]
  (the model's factor raised to `MODEL_EXPONENT`: one more, weak, voter; it was trained on
  these very labels, so its agreement with them overstates its reliability);
- M-step: the class prior and each person's confusion matrix from the posteriors.

The weak voter's confusion matrix is measured once, against the people's own vote shares, and
then kept: re-estimated inside EM it can turn into the reference itself (a model that calls
everything neutral "explains" a careful annotator as random). So it can break ties and expose
an annotator who disagrees with everyone, never outvote the people as a whole.

Per class where data allows: a voter's confusion row is its own counts shrunk towards its
one-coin estimate (accuracy `a` on the diagonal, (1 − a)/(K − 1) elsewhere) with `SHRINK`
pseudo-labels, so a voter with a few labels gets one accuracy, one with many a full matrix.
The accuracy has a Beta(2, 1) prior (better than chance until the data say otherwise).

Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm". numpy only; a few thousand labels take milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MODEL = "model"  # the voter name of the active model's guesses
MODEL_EXPONENT = 0.5  # the weak voter: its likelihood counts as a square root
SHRINK = 10.0  # pseudo-labels per confusion row towards the one-coin estimate
ACCURACY_PRIOR = (2.0, 1.0)  # Beta prior of a voter's accuracy (pseudo right, pseudo wrong)
MAX_ITERATIONS = 200
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Vote:
    item: int  # a message id
    voter: str
    label: str


@dataclass(frozen=True)
class VoterEstimate:
    """What EM learnt about one voter."""

    voter: str
    labels: int
    accuracy: float  # expected share of its labels that are right (under the posteriors)
    confusion: list[list[float]]  # P(says column | true row), rows/columns in label order


@dataclass
class Resolution:
    """Posterior label of every item and each voter's reliability."""

    labels: list[str]
    posteriors: dict[int, list[float]] = field(default_factory=dict)
    voters: dict[str, VoterEstimate] = field(default_factory=dict)
    prior: list[float] = field(default_factory=list)
    iterations: int = 0

    def label_of(self, item: int) -> tuple[str, float]:
        """(the most probable label, its posterior probability)."""
        post = self.posteriors[item]
        best = max(range(len(post)), key=lambda k: (post[k], -k))
        return self.labels[best], float(post[best])


def dawid_skene(
    votes: Iterable[Vote],
    labels: Sequence[str],
    *,
    weak: Iterable[str] = (MODEL,),
    exponent: float = MODEL_EXPONENT,
) -> Resolution:
    """Resolve every item with at least one vote from a voter that is not weak."""
    labels = list(labels)
    index = {label: k for k, label in enumerate(labels)}
    kept = [v for v in votes if v.label in index]
    weak = set(weak)
    strong_items = {v.item for v in kept if v.voter not in weak}
    kept = [v for v in kept if v.item in strong_items]
    if not kept:
        return Resolution(labels)
    items = sorted(strong_items)
    voters = sorted({v.voter for v in kept})
    item_ix = {item: i for i, item in enumerate(items)}
    voter_ix = {voter: j for j, voter in enumerate(voters)}
    it = np.array([item_ix[v.item] for v in kept])
    vo = np.array([voter_ix[v.voter] for v in kept])
    la = np.array([index[v.label] for v in kept])
    is_weak = np.array([v.voter in weak for v in kept])
    w = np.where(is_weak, exponent, 1.0)
    shape = (len(items), len(labels), len(voters))
    posterior = _majority(it, la, np.where(is_weak, 0.0, 1.0), shape)
    weak_ix = sorted({voter_ix[v] for v in weak if v in voter_ix})
    fixed = _m_step(posterior, it, vo, la, shape)[0][weak_ix]  # against the people's votes
    confusion, prior, iterations = None, None, 0
    for iterations in range(1, MAX_ITERATIONS + 1):  # noqa: B007  (the count is reported)
        confusion, prior = _m_step(posterior, it, vo, la, shape)
        confusion[weak_ix] = fixed
        updated = _e_step(confusion, prior, it, vo, la, w, shape)
        change = float(np.abs(updated - posterior).max())
        posterior = updated
        if change < TOLERANCE:
            break
    assert confusion is not None and prior is not None
    result = Resolution(labels, prior=[float(p) for p in prior], iterations=iterations)
    result.posteriors = {item: posterior[i].tolist() for i, item in enumerate(items)}
    right = posterior[it, la]  # the posterior that each vote is right
    for j, voter in enumerate(voters):
        mine = vo == j
        result.voters[voter] = VoterEstimate(
            voter,
            int(mine.sum()),
            float(right[mine].mean()),
            confusion[j].tolist(),
        )
    return result


def _majority(it: np.ndarray, la: np.ndarray, w: np.ndarray, shape: tuple) -> np.ndarray:
    """The starting posteriors: each item's (weighted) vote shares, smoothed."""
    n_items, k, _ = shape
    counts = np.full((n_items, k), 1e-2)
    np.add.at(counts, (it, la), w)
    return counts / counts.sum(axis=1, keepdims=True)


def _m_step(
    posterior: np.ndarray, it: np.ndarray, vo: np.ndarray, la: np.ndarray, shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Each voter's confusion matrix (shrunk towards its one-coin estimate) and the prior."""
    n_items, k, n_voters = shape
    counts = np.zeros((n_voters, k, k))  # [voter, said, true] while adding
    np.add.at(counts, (vo, la), posterior[it])
    counts = counts.transpose(0, 2, 1)  # [voter, true, said]
    right = np.trace(counts, axis1=1, axis2=2)
    total = counts.sum(axis=(1, 2))
    good, bad = ACCURACY_PRIOR
    accuracy = (right + good) / (total + good + bad)
    off = (1.0 - accuracy) / max(1, k - 1)
    one_coin = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
    one_coin[:, np.arange(k), np.arange(k)] = accuracy[:, None]
    confusion = (counts + SHRINK * one_coin) / (counts.sum(axis=2, keepdims=True) + SHRINK)
    prior = (posterior.sum(axis=0) + 1.0) / (n_items + k)
    return confusion, prior


def _e_step(
    confusion: np.ndarray,
    prior: np.ndarray,
    it: np.ndarray,
    vo: np.ndarray,
    la: np.ndarray,
    w: np.ndarray,
    shape: tuple,
) -> np.ndarray:
    """Posteriors ∝ prior · Π π_v[·, said] (the weak voter's factor to its exponent)."""
    n_items, k, _ = shape
    log_post = np.tile(np.log(prior), (n_items, 1))
    log_conf = np.log(np.clip(confusion, 1e-12, None))  # [voter, true, said]
    np.add.at(log_post, it, w[:, None] * log_conf[vo, :, la])
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)
