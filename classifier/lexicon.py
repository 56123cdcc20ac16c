"""The VADER valence lexicon as training signal for the embedding model.

PyPI `vadersentiment` ships `vaderSentiment/vader_lexicon.txt` (about 7,500 words, emoticons and
slang with a mean human valence in [-4, +4]) and `emoji_utf8_lexicon.txt` (emoji → English
description). We read both as data files through the installed distribution's file list and never
import the package.

`apply_lexicon_prior(classifier, lexicon)` writes that knowledge into a trained embedding model:
it adds to each lexicon word's embedding row a vector whose effect through the (fixed) linear head
is "+valence toward positive (or negative), away from the other class". With mean pooling this is
close to VADER's rule (a text's sentiment is the sum of its words' valences, normalised by length)
layered on top of what the corpus taught. Negation ("not good"): when the model's tokenizer marks
negation scopes (`negation_scope`, see `classifier.tokenizer`), the `not_<word>` rows get the
word's valence flipped and damped by VADER's factor (-0.74), as VADER does for a negated word.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from classifier.errors import ClassifierError
from classifier.tokenizer import NEGATION_CUES

log = logging.getLogger(__name__)

LEXICON_DIST = "vaderSentiment"
LEXICON_FILE = "vaderSentiment/vader_lexicon.txt"
EMOJI_FILE = "vaderSentiment/emoji_utf8_lexicon.txt"

# VADER's negation words (those that are single tokens for our tokenizer: the tokenizer's own
# cue list, one source for both) and its damping factor: a negated word keeps -0.74 of its
# valence ("not good" is mildly negative). Sorted, so any loop over them is deterministic.
NEGATIONS = tuple(sorted(NEGATION_CUES))
NEGATION_SCALAR = -0.74


class SourceMissingError(ClassifierError):
    """A bootstrap data source (a file shipped by a PyPI package) is not installed."""

    exit_code = 1


def package_file(dist_name: str, rel_path: str, pip_name: str | None = None) -> Path:
    """Path of a data file shipped by an installed distribution (without importing the package).

    Raises `SourceMissingError` saying what to `pip install` when the package or file is absent.
    """
    pip_name = pip_name or dist_name
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise SourceMissingError(
            f"the bootstrap data file {rel_path} comes from the PyPI package {pip_name!r}, "
            f"which is not installed: pip install {pip_name}"
        ) from None
    for entry in dist.files or ():
        if str(entry).replace("\\", "/") == rel_path:
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise SourceMissingError(
        f"the installed package {pip_name!r} has no file {rel_path} (broken install?): "
        f"pip install --force-reinstall {pip_name}"
    )


@dataclass(frozen=True)
class Lexicon:
    """Token → valence in [-4, 4] (words, emoticons, slang, and emoji scored by description)."""

    valence: dict[str, float]
    source: str

    def __len__(self) -> int:
        return len(self.valence)


def load_lexicon(*, with_emoji: bool = True) -> Lexicon:
    """Read the VADER lexicon (lower-cased single tokens only) plus emoji valences (cached)."""
    return _load_lexicon(with_emoji)


@lru_cache(maxsize=2)
def _load_lexicon(with_emoji: bool) -> Lexicon:
    from classifier.tokenizer import tokenize

    path = package_file(LEXICON_DIST, LEXICON_FILE, "vadersentiment")
    valence: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        try:
            value = float(parts[1])
        except ValueError:
            continue
        entry = parts[0].strip()
        tokens = tokenize(entry)
        # Keep entries our tokenizer reads as exactly themselves: a multi-token entry cannot be
        # one embedding row, and one read as something else ("8)" → <num>, "?:" → "?") would
        # give that token a valence it does not have.
        if len(tokens) == 1 and tokens[0] in (entry, entry.lower()):
            valence.setdefault(tokens[0], value)
    if with_emoji:
        valence.update(_emoji_valences(valence))
    return Lexicon(valence, f"vadersentiment {metadata.version(LEXICON_DIST)}")


def _emoji_valences(words: dict[str, float]) -> dict[str, float]:
    """Emoji valence = the summed valence of its description's words (VADER reads emoji so)."""
    from classifier.tokenizer import tokenize

    path = package_file(LEXICON_DIST, EMOJI_FILE, "vadersentiment")
    out: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        emoji, _, description = line.partition("\t")
        tokens = tokenize(emoji)
        score = sum(words.get(w, 0.0) for w in tokenize(description))
        if len(tokens) == 1 and score:
            out[tokens[0]] = max(-4.0, min(4.0, score))
    return out


def lexicon_label(lexicon: Lexicon, text: str, *, negations: Iterable[str] = NEGATIONS) -> str:
    """VADER's core rule with our tokenizer: summed valence (a word after a negation within three
    tokens counts -0.74×), normalised as VADER's compound; ≥ 0.05 positive, ≤ -0.05 negative."""
    from classifier.tokenizer import tokenize

    negs = set(negations)
    tokens = tokenize(text)
    total = 0.0
    for i, token in enumerate(tokens):
        value = lexicon.valence.get(token)
        if value is None:
            continue
        if negs.intersection(tokens[max(0, i - 3) : i]):
            value *= NEGATION_SCALAR
        total += value
    compound = total / math.sqrt(total * total + 15.0)
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def lexicon_examples(lexicon: Lexicon, min_abs: float = 0.5) -> tuple[list[str], list[str]]:
    """One-token training texts for every clearly polar lexicon entry, labelled by its sign.

    They put every lexicon token into the model's vocabulary (so `apply_lexicon_prior` can reach
    it) and, with a small weight, teach its direction.
    """
    texts, labels = [], []
    for token, value in sorted(lexicon.valence.items()):
        if abs(value) >= min_abs:
            texts.append(token)
            labels.append("positive" if value > 0 else "negative")
    return texts, labels


def negated_lexicon_examples(lexicon: Lexicon, min_abs: float = 0.5) -> tuple[list[str], list[str]]:
    """Two-word texts "not <word>" for every clearly polar lexicon word, labelled by the negated
    sign (VADER: a negated word keeps -0.74 of its valence).

    With negation marking they put every `not_<word>` token into the vocabulary, so the prior
    can reach it (`apply_lexicon_prior`); emoji and emoticons are never marked, so not listed.
    """
    from classifier.tokenizer import NEG_PREFIX, tokenize

    texts, labels = [], []
    for token, value in sorted(lexicon.valence.items()):
        if abs(value) < min_abs or not token.isalpha():
            continue
        text = f"not {token}"
        if tokenize(text, negation_scope=1) == ["not", NEG_PREFIX + token]:
            texts.append(text)
            labels.append("negative" if value > 0 else "positive")
    return texts, labels


def apply_lexicon_prior(
    classifier,  # classifier.model.Classifier with the embedding backbone
    lexicon: Lexicon,
    *,
    strength: float = 8.0,
) -> int:
    """Add each lexicon token's valence to its embedding row, in place; return rows changed.

    The direction `d` solves `W d = t` (W: the head's weight, t: +1 for the valence's class, -1
    for the opposite one, 0 for neutral), so one unit of valence moves the logits by exactly t
    whatever the head learned. `strength` scales valence → embedding. When the vocabulary marks
    negation scopes, each `not_<word>` row it has gets `NEGATION_SCALAR` times the word's valence
    ("not good" then leans negative, "not bad" positive). Needs the labels negative/positive and
    a vocabulary.

    Two former options were removed as measured worse and unused: biasing the hashed bigram
    "not w" (its buckets are shared with common bigrams; it cost 2-8 points of macro-F1 on
    SemEval tweets) and shifting neutral down.
    """
    import torch

    labels = list(classifier.labels)
    if "positive" not in labels or "negative" not in labels:
        return 0
    vocab = getattr(classifier.text_encoder, "vocab", None)
    if classifier.backbone != "embedding" or vocab is None:  # BERT: no per-word rows to bias
        return 0
    weight = classifier.module.head.linear.weight.detach().float().cpu()  # [L, D]
    target = torch.zeros(len(labels))
    target[labels.index("positive")], target[labels.index("negative")] = 1.0, -1.0
    direction = torch.linalg.pinv(weight) @ target  # [D]: +1 toward positive per unit
    table = classifier.module.encoder.embedding.weight
    rows, deltas = [], []
    for token, value in lexicon.valence.items():
        row = vocab.index.get(token)
        if row is not None:
            rows.append(row)
            deltas.append(value)
    if getattr(vocab, "negation_scope", 0):
        from classifier.tokenizer import NEG_PREFIX

        for token, value in lexicon.valence.items():
            row = vocab.index.get(NEG_PREFIX + token)
            if row is not None:
                rows.append(row)
                deltas.append(NEGATION_SCALAR * value)
    if not rows:
        return 0
    idx = torch.tensor(rows, dtype=torch.long)
    # Sign-aware magnitude: a negative valence uses the mirrored target, hence |v| * d(sign)
    # rather than v * d.
    mirrored = torch.linalg.pinv(weight) @ _mirror(target, labels)
    vals = torch.tensor(deltas, dtype=torch.float32)
    update = torch.where(
        vals.unsqueeze(1) >= 0,
        vals.abs().unsqueeze(1) * direction,
        vals.abs().unsqueeze(1) * mirrored,
    )
    with torch.no_grad():
        table.index_add_(0, idx.to(table.device), (strength * update).to(table))
    return len(rows)


def _mirror(target, labels: list[str]):
    """Swap the positive and negative entries of a target vector."""
    out = target.clone()
    p, n = labels.index("positive"), labels.index("negative")
    out[p], out[n] = target[n], target[p]
    return out
