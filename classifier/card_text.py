"""The model card in words: which rows a model's figures were measured on (`EvalSet`), and the
readable `README.md` every model folder gets (`render_readme`).

`describe_eval` works on the card's summaries (`ModelCard.summary_metrics()` /
`summary_manifest()`, also stored in `model_versions.metrics` / `.manifest`), so the CLI's
`models list`, /models and /status name the eval set without opening the folder.

`render_readme` renders whatever fields the card has: the known ones in their own sections, and
any field it does not know (added by a newer sentibot) under "Other fields", so a new card field
shows up in the README without a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from classifier.card import ModelCard

# Below this many rows a macro-F1 swings by 0.1 or more when a handful of texts change: flagged.
MIN_RELIABLE_ROWS = 50
# Label sources that are this bot's own people (docs/learning.md); `import` is the operator's.
USER_SOURCES = ("inline", "queue")
README_FILE = "README.md"


@dataclass(frozen=True)
class EvalSet:
    """The rows a model's headline figures were measured on."""

    name: str  # e.g. "bootstrap eval slice", "eval split", "dev split of the training file"
    n: int | None
    key: str  # same key: same rows (versions can be compared); else the set changed
    user_rows: int = 0  # labelled by this bot's users (inline buttons, /label queue)
    import_rows: int = 0  # from `sentibot import`
    bootstrap_rows: int = 0  # from the bootstrap corpus's held-out slice
    held_out: bool = True  # False: measured on the training data itself

    @property
    def reliable(self) -> bool:
        return self.held_out and self.n is not None and self.n >= MIN_RELIABLE_ROWS

    def short(self) -> str:
        """`eval split (1,095 rows, 12 from users)` for tables."""
        parts = [f"{self.n:,} rows" if self.n is not None else "? rows"]
        if self.user_rows:
            parts.append(f"{self.user_rows:,} from users")
        if not self.reliable:
            parts.append("unreliable")
        return f"{self.name} ({', '.join(parts)})"


_DEV_NAMES = {
    "split": "dev split of the training data",
    "explicit": "dev set",
    "train": "training data (too few rows to hold any out)",
}


def describe_eval(
    metrics: dict[str, Any] | None, manifest: dict[str, Any] | None
) -> EvalSet | None:
    """The eval set behind a card summary's headline figures (None: no figures)."""
    metrics, manifest = metrics or {}, manifest or {}
    on, n = metrics.get("measured_on"), metrics.get("n")
    n = int(n) if isinstance(n, int | float) else None
    if on == "eval":
        sources = _eval_sources(manifest.get("eval"))
        if manifest.get("kind") == "bootstrap" or "bootstrap" in manifest and not sources:
            return EvalSet(
                "bootstrap eval slice", n, f"bootstrap-eval-slice/{n}", bootstrap_rows=n or 0
            )
        ev = manifest.get("eval") if isinstance(manifest.get("eval"), dict) else {}
        key = str(ev.get("sha256") or f"eval/{n}")
        users = sum(c for s, c in sources.items() if set(s.split("+")) & set(USER_SOURCES))
        imports = sum(c for s, c in sources.items() if set(s.split("+")) == {"import"})
        boot = sources.get("bootstrap", 0)
        return EvalSet("eval split", n, key, users, imports, boot)
    if on == "dev":
        source = manifest.get("dev_source") or "split"
        name = _DEV_NAMES.get(source, "dev set")
        key = f"dev/{manifest.get('sha256') or '?'}/{n}"
        return EvalSet(name, n, key, held_out=source != "train")
    return None


def _eval_sources(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not isinstance(value.get("rows_per_source"), dict):
        return {}
    return {str(k): int(v) for k, v in value["rows_per_source"].items()}


def card_eval_set(card: ModelCard) -> EvalSet | None:
    return describe_eval(card.summary_metrics(), card.summary_manifest())


# --- README.md -------------------------------------------------------------------------------
_RENDERED = {"kind", "recipe", "data", "eval", "eval_split", "active_eval", "dev", "training"}
_RENDERED |= {"postprocess", "origin", "versions", "card_version"}
_KIND_WORDS = {
    "bootstrap": "the bootstrap model, built from offline sources before anyone labelled anything",
    "train": "trained with `sentibot train` on a labelled CSV file",
    "retrain": "retrained by the learning loop on the bootstrap corpus plus the bot's labels",
}


def render_readme(
    card: ModelCard, *, version: str | None = None, labels: list[str] | None = None
) -> str:
    """The model folder's README.md, in Markdown."""
    labels = labels or list(((card.eval or card.dev or {}).get("labels")) or [])
    backbone = card.recipe.get("backbone", "embedding")
    lines = [f"# Sentiment model {version or ''}".rstrip(), ""]
    kind = _KIND_WORDS.get(card.kind, card.kind)
    lines += [f"{kind[:1].upper()}{kind[1:]}; {backbone} backbone.", ""]
    lines += _intended_use(labels)
    lines += _data_section(card)
    lines += _metrics_section(card)
    lines += _calibration_section(card)
    lines += _training_section(card)
    lines += _limitations(card)
    lines += _other_fields(card)
    if card.versions:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(card.versions.items()))
        lines += ["## Software", "", versions, ""]
    lines.append("Generated from `metrics.json` (the model card) by sentibot.")
    return "\n".join(lines) + "\n"


def _intended_use(labels: list[str]) -> list[str]:
    names = ", ".join(labels) if labels else "its labels"
    return [
        "## Intended use",
        "",
        f"Scoring the sentiment ({names}) of short, informal English chat messages, with a "
        "confidence, for sentibot's replies, /mood and its labeling queue. It reads a message "
        "on its own, without the conversation. Not meant for decisions about people.",
        "",
    ]


def _data_section(card: ModelCard) -> list[str]:
    data, origin = card.data, card.origin
    lines = ["## Data", ""]
    if card.kind == "bootstrap":
        for name, source in (origin.get("sources") or {}).items():
            lines.append(f"- {name}: {source}")
        boot = data.get("bootstrap") or {}
        if boot:
            lines.append(f"- corpus rows: {_counts(boot.get('rows_per_source'))}")
    elif card.kind == "train" and origin.get("data"):
        lines.append(f"- file: `{origin['data']}`")
    train = data.get("train") if isinstance(data.get("train"), dict) else None
    if train:
        lines.append(f"- training rows by source: {_counts(train.get('rows_per_source'))}")
        users = data.get("user_labels") or {}
        if users:
            weight = data.get("user_label_weight")
            lines.append(
                f"- labels from the bot: {users.get('train', 0):,} trained on"
                + (f" (each weighs {weight:g}×)" if isinstance(weight, int | float) else "")
                + f", {users.get('eval', 0):,} held out for evaluation"
            )
    rows = data.get("train_rows", data.get("rows"))
    if rows is not None:
        lines.append(
            f"- rows used for training: {rows:,}; per label: {_counts(data.get('rows_per_label'))}"
        )
    if data.get("dev_rows"):
        lines.append(f"- dev rows (early stopping): {data['dev_rows']:,}")
    return lines + [""]


def _metrics_section(card: ModelCard) -> list[str]:
    lines = ["## Metrics", ""]
    headline = card.headline()
    if headline is None:
        return lines + ["No figures recorded.", ""]
    evalset = card_eval_set(card)
    on, report = headline
    where = evalset.short() if evalset else f"{on} rows"
    note = card.eval_split if on == "eval" and card.eval_split else ""
    note = "" if not note or evalset is None or evalset.name in note else f" ({note})"
    lines.append(f"Measured on the {where}{note}.")
    if evalset is not None and not evalset.reliable:
        why = "measured on the training data" if not evalset.held_out else "fewer than "
        why += "" if not evalset.held_out else f"{MIN_RELIABLE_ROWS} rows"
        lines.append(f"**Unreliable:** {why}; a smoke test, not a quality estimate.")
    lines += [""] + _report_table(report)
    if card.active_eval:
        lines.append(
            f"The model it was compared with scored macro-F1 {card.active_eval['macro_f1']:.3f} on "
            "the same rows."
        )
    if on == "eval" and card.dev:
        dev = card.dev
        lines.append(
            f"Dev rows (early stopping): macro-F1 {dev['macro_f1']:.3f} (n={dev.get('n')})."
        )
    return lines + [""]


def _report_table(report: dict[str, Any]) -> list[str]:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in (report.get("per_class") or {}).items():
        lines.append(
            f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} "
            f"| {int(row['support'])} |"
        )
    lines.append(
        f"\nmacro-F1 **{report['macro_f1']:.3f}**, accuracy {report['accuracy']:.3f}, "
        f"n={report.get('n')}"
    )
    return lines


def _calibration_section(card: ModelCard) -> list[str]:
    post = card.postprocess or {}
    if not post:
        return []
    lines = ["## Calibration and after-training steps", ""]
    if post.get("temperature") is not None:
        lines.append(
            f"- temperature {post['temperature']:g}: logits divided by it, fitted on the dev rows "
            "(changes confidences, never labels)"
        )
    if post.get("lexicon_prior_rows"):
        lines.append(
            f"- VADER lexicon written into {post['lexicon_prior_rows']:,} word vectors "
            f"(strength {post.get('lexicon_prior_strength')})"
        )
    if post.get("label_prior"):
        lines.append(
            f"- label prior for everyday chat added to the bias: {_counts(post['label_prior'])}"
        )
    before = post.get("before") or {}
    if before:
        names = {"dev_macro_f1": "dev macro-F1", "eval_macro_f1": "eval macro-F1"}
        figures = ", ".join(f"{names.get(k, k)} {_number(v)}" for k, v in before.items())
        lines.append(f"- before these steps: {figures} (after them: see Metrics)")
    return lines + [""]


def _training_section(card: ModelCard) -> list[str]:
    t, r = card.training, card.recipe
    lines = ["## Training", ""]
    keys = ("backbone", "epochs", "lr", "batch_size", "seed")
    keys += ("bert_mode", "bert_path") if r.get("backbone") == "bert" else ("embedding_dim",)
    lines.append("recipe: " + ", ".join(f"{k} {r[k]}" for k in keys if r.get(k) is not None))
    if t.epochs_run is not None:
        early = t.epochs_run < (r.get("epochs") or t.epochs_run)
        lines.append(
            f"\n{'stopped early at' if early else 'ran'} epoch {t.epochs_run}"
            + (f" of {r.get('epochs')}" if r.get("epochs") else "")
            + (f" (best: {t.best_epoch})" if t.best_epoch else "")
            + (f", {t.seconds:.0f} s" if t.seconds else "")
        )
    if t.dev_curve:
        curve = ", ".join(f"{p.get('dev_macro_f1', 0):.3f}" for p in t.dev_curve)
        lines.append(f"\ndev macro-F1 per epoch: {curve}")
    return lines + [""]


def _limitations(card: ModelCard) -> list[str]:
    lines = [
        "## Limitations",
        "",
        "- English only; other languages, sarcasm, irony and context from earlier messages are "
        "mostly missed.",
        "- Confidence is a score, not a guarantee: check a sample before relying on it.",
    ]
    if card.kind in ("bootstrap", "retrain"):
        lines.append(
            "- The bootstrap corpus is 2015 tweets about airlines, #DeflateGate, Coachella, "
            "Apple, self-driving cars and Claritin: its words carry those topics' moods."
        )
    if card.kind == "train":
        lines.append("- Knows only the training file's language and labels.")
    evalset = card_eval_set(card)
    if evalset is not None and not evalset.reliable:
        lines.append("- Its figures are unreliable (see Metrics).")
    return lines + [""]


def _other_fields(card: ModelCard) -> list[str]:
    extra = {
        k: v for k, v in card.to_dict().items() if k not in _RENDERED and v not in (None, {}, [])
    }
    if not extra:
        return []
    lines = ["## Other fields", ""]
    for key, value in extra.items():
        lines.append(f"- {key}: {_compact(value)}")
    return lines + [""]


def _counts(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return "n/a"
    return ", ".join(f"{k} {_number(v)}" for k, v in value.items())


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 500 else text[:497] + "..."
