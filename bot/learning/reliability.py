"""Annotator reliability: Dawid–Skene EM over every label source, the model as a weak voter.

Each person-like source (an annotator, the pooled inline buttons of ordinary users, imports) has
a confusion matrix π[true, said]; the true label of each item is hidden. EM alternates:

- E-step: the posterior of each item's label, ∝ prior · Π over its labels π_v[·, said]
  · p_model(·)^MODEL_EXPONENT: the active model's probabilities for the message are one more,
  weak, voter (a product of experts, tempered: it was trained on these very labels);
- M-step: the class prior and each source's confusion matrix from the posteriors.

The model only chooses among the labels people gave a message: a label nobody gave gets no
more than the least likely of the given ones, so a lone label stands whatever the model thinks
(a model that calls everything neutral must not "explain" a careful annotator as random, and
with nobody else to compare, EM would let it). Between people who disagree its probabilities
break the tie, and over many ties that exposes someone who disagrees with everyone: between a
careful and an always-wrong annotator it only has to prefer the right one of two labels. It is
never re-estimated inside EM, so it cannot become the reference itself.

Per class where data allows: a source's confusion row is its own counts shrunk towards its
one-coin estimate (accuracy `a` on the diagonal, (1 − a)/(K − 1) elsewhere) with `SHRINK`
pseudo-labels, so a source with a few labels gets one accuracy, one with many a full matrix.
The accuracy has a Beta(2, 1) prior (better than chance until the data say otherwise).

Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm". numpy only; a few thousand labels take milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

MODEL = "model"  # the active model, in the reliability list
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
    model: Mapping[int, Sequence[float]] | None = None,
    exponent: float = MODEL_EXPONENT,
) -> Resolution:
    """Resolve every item with at least one vote; `model[item]`: the model's probabilities
    for it, in `labels` order (the weak voter)."""
    labels = list(labels)
    index = {label: k for k, label in enumerate(labels)}
    kept = [v for v in votes if v.label in index and v.voter != MODEL]
    if not kept:
        return Resolution(labels)
    items = sorted({v.item for v in kept})
    voters = sorted({v.voter for v in kept})
    item_ix = {item: i for i, item in enumerate(items)}
    voter_ix = {voter: j for j, voter in enumerate(voters)}
    it = np.array([item_ix[v.item] for v in kept])
    vo = np.array([voter_ix[v.voter] for v in kept])
    la = np.array([index[v.label] for v in kept])
    shape = (len(items), len(labels), len(voters))
    proposed = np.zeros((len(items), len(labels)), dtype=bool)
    proposed[it, la] = True
    weak = _model_factor(model or {}, items, proposed, exponent)
    posterior = _majority(it, la, np.ones(len(kept)), shape)
    confusion, prior, iterations = None, None, 0
    for iterations in range(1, MAX_ITERATIONS + 1):  # noqa: B007  (the count is reported)
        confusion, prior = _m_step(posterior, it, vo, la, shape)
        updated = _e_step(confusion, prior, it, vo, la, weak, shape)
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
    guessed = [i for i, item in enumerate(items) if item in (model or {})]
    if guessed:  # the model's reliability: how often its top label is the resolved one
        top = np.array([int(np.argmax(model[items[i]])) for i in guessed])
        result.voters[MODEL] = VoterEstimate(
            MODEL, len(guessed), float(posterior[guessed, top].mean()), []
        )
    return result


def _model_factor(
    model: Mapping[int, Sequence[float]], items: list[int], proposed: np.ndarray, exponent: float
) -> np.ndarray:
    """log p_model^exponent per item and label, a label nobody gave held to the lowest of the
    given ones (zeros where the model gave no probabilities)."""
    n_items, k = proposed.shape
    probs = np.ones((n_items, k))
    known = np.zeros(n_items, dtype=bool)
    for i, item in enumerate(items):
        p = model.get(item)
        if p is not None and len(p) == k:
            probs[i], known[i] = p, True
    probs = np.clip(probs, 1e-6, None)
    row = exponent * np.log(probs / probs.sum(axis=1, keepdims=True))
    floor = np.where(proposed, row, np.inf).min(axis=1, keepdims=True)
    factor = np.where(proposed, row, np.minimum(row, floor))
    factor[~known] = 0.0
    return factor


def _majority(it: np.ndarray, la: np.ndarray, w: np.ndarray, shape: tuple) -> np.ndarray:
    """The starting posteriors: each item's (weighted) vote shares, smoothed."""
    n_items, k, _ = shape
    counts = 1e-2 + np.bincount(it * k + la, weights=w, minlength=n_items * k).reshape(n_items, k)
    return counts / counts.sum(axis=1, keepdims=True)


def _m_step(
    posterior: np.ndarray, it: np.ndarray, vo: np.ndarray, la: np.ndarray, shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Each voter's confusion matrix (shrunk towards its one-coin estimate) and the prior."""
    n_items, k, n_voters = shape
    cell = vo * k + la  # (voter, said) of each vote
    counts = np.stack(  # [voter, true, said]; bincount: far faster than np.add.at
        [
            np.bincount(cell, weights=posterior[it, t], minlength=n_voters * k).reshape(n_voters, k)
            for t in range(k)
        ],
        axis=1,
    )
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
    weak: np.ndarray,
    shape: tuple,
) -> np.ndarray:
    """Posteriors ∝ prior · Π π_v[·, said] · p_model^exponent (`weak`: its log factor)."""
    n_items, k, _ = shape
    log_post = np.tile(np.log(prior), (n_items, 1)) + weak
    log_conf = np.log(np.clip(confusion, 1e-12, None))  # [voter, true, said]
    for t in range(k):
        log_post[:, t] += np.bincount(it, weights=log_conf[vo, t, la], minlength=n_items)
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)
