"""The model card: what a model folder says about how it was made and how well it scores.

Every model folder holds its card as `metrics.json`. `save_model` writes a `ModelCard`;
`read_card(folder)` is the one reader, and it migrates what older sentibot versions wrote (no
`card_version`: the `{"metrics", "manifest", "versions", ...}` shapes of the bootstrap build,
`sentibot train` and the retrain worker). The database's `model_versions.metrics` / `.manifest`
columns hold `summary_metrics()` / `summary_manifest()`, one shape for every version.

Changing the card: a new field gets a default (None, or an empty list or dict), and old cards
read with that default, with no version bump. Renaming, moving or re-meaning a field bumps
`CARD_VERSION` and adds a step to `_UPGRADES` that rewrites the previous version's dict.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from classifier.errors import ModelFolderError

CARD_FILE = "metrics.json"
CARD_VERSION = 1
KINDS = ("bootstrap", "train", "retrain")  # what made the model (`ModelCard.kind`)

Report = dict[str, Any]  # `EvalReport.to_dict()`: accuracy, macro_f1, per_class, confusion, n


@dataclass
class TrainingLog:
    """How the training run went."""

    epochs_run: int | None = None
    best_epoch: int | None = None  # its weights are the model's
    seconds: float | None = None
    # One entry per epoch, `{"epoch": 1, "dev_macro_f1": 0.61}`; more keys may join each entry.
    dev_curve: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelCard:
    """Everything `metrics.json` records about one model folder."""

    kind: str  # one of KINDS
    recipe: dict[str, Any] = field(default_factory=dict)  # `TrainRecipe.to_dict()`
    # The data manifest: rows, rows_per_label, sha256 of the (text, label) pairs, train/dev
    # rows, dev_source, weighted; callers add theirs (bootstrap corpus, retrain train/eval counts).
    data: dict[str, Any] = field(default_factory=dict)
    eval: Report | None = None  # on held-out rows the run never saw
    eval_split: str | None = None  # which rows `eval` is on, in words
    active_eval: Report | None = None  # retrain: the model it was to replace, on the same rows
    dev: Report | None = None  # on the early-stopping rows, best epoch (and postprocess) applied
    training: TrainingLog = field(default_factory=TrainingLog)
    # The bootstrap recipe's after-training steps when they ran (`classifier.bootstrap.
    # postprocess`): lexicon_prior_rows, lexicon_prior_strength, temperature, label_prior.
    postprocess: dict[str, Any] | None = None
    # How the run came about: the bootstrap build's steps (bootstrap_recipe) and sources;
    # `sentibot train`'s data file; a retrain's version, parent, trigger, requested_by, run_id.
    origin: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # libraries, set by save_model
    # A retrain's learning curve: `{"points": [{"fraction", "labels", "macro_f1"}, ...],
    # "verdict": "rising" | "flattening" | "too few labels to tell", "gain"}`; None: not made.
    learning_curve: dict[str, Any] | None = None
    card_version: int = CARD_VERSION

    # --- figures -------------------------------------------------------------------------------
    def headline(self) -> tuple[str, Report] | None:
        """The figures to quote for this model: ("eval", report), else ("dev", report)."""
        if self.eval is not None:
            return "eval", self.eval
        if self.dev is not None:
            return "dev", self.dev
        return None

    def summary_metrics(self) -> dict[str, Any]:
        """`model_versions.metrics`: the headline macro_f1 / accuracy / n at the top (and
        `measured_on` saying whether they are eval or dev figures), then the reports."""
        on, report = self.headline() or (None, {})
        return {
            "card_version": self.card_version,
            "measured_on": on,
            "macro_f1": report.get("macro_f1"),
            "accuracy": report.get("accuracy"),
            "n": report.get("n"),
            "eval": self.eval,
            "dev": self.dev,
            "active_eval": self.active_eval,
        }

    def summary_manifest(self) -> dict[str, Any]:
        """`model_versions.manifest`: the data manifest, with the card's kind and recipe."""
        return {
            "card_version": self.card_version,
            "kind": self.kind,
            **self.data,
            "recipe": self.recipe,
        }

    # --- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """A card from its current-version dict (unknown keys, from newer cards, are left out)."""
        known = {f.name for f in fields(cls)} - {"training"}
        values = {k: v for k, v in data.items() if k in known}
        log_fields = {f.name for f in fields(TrainingLog)}
        training = data.get("training") or {}
        values["training"] = TrainingLog(**{k: v for k, v in training.items() if k in log_fields})
        return cls(**values)


def read_card(folder: str | Path) -> ModelCard:
    """The model card of `folder` (`metrics.json`), migrated to the current version.

    Raises `ModelFolderError` naming the file when it is missing, not JSON, of the wrong shape,
    or written by a newer sentibot.
    """
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing (not a complete model folder)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{path}: unreadable or not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: expected a JSON object")
    version = data.get("card_version", 0)
    if not isinstance(version, int) or version < 0:
        raise ModelFolderError(f"{path}: card_version must be a whole number, not {version!r}")
    if version > CARD_VERSION:
        raise ModelFolderError(
            f"{path}: card_version {version} was written by a newer sentibot "
            f"(this one reads up to {CARD_VERSION})"
        )
    if version == 0 and "metrics" not in data:
        raise ModelFolderError(f"{path}: neither a model card nor an older metrics file")
    while version < CARD_VERSION:
        data, version = _UPGRADES[version](data), version + 1
    try:
        card = ModelCard.from_dict(data)
        _check(card)
    except (TypeError, ValueError) as exc:
        raise ModelFolderError(f"{path}: not a valid model card ({exc})") from None
    return card


def _check(card: ModelCard) -> None:
    if not isinstance(card.kind, str) or not card.kind:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    for name in ("recipe", "data", "origin", "versions"):
        if not isinstance(getattr(card, name), dict):
            raise ValueError(f"{name} must be an object")
    for name in ("eval", "active_eval", "dev", "postprocess"):
        if getattr(card, name) is not None and not isinstance(getattr(card, name), dict):
            raise ValueError(f"{name} must be an object or null")


# --- older cards ----------------------------------------------------------------------------------
# Keys older cards kept among the training config that belong to the machine, not the recipe.
_RUN_KEYS = ("device", "num_threads", "feature_cache")
_BOOTSTRAP_POST = ("lexicon_prior_rows", "lexicon_prior_strength", "temperature", "label_prior")


def _is_report(value: Any) -> bool:
    return isinstance(value, dict) and "macro_f1" in value


def _from_unversioned(old: dict[str, Any]) -> dict[str, Any]:
    """Version 0 → 1. Three writers, three shapes, all `{"metrics", "manifest", "versions"}`:

    - bootstrap build: `metrics` = eval-slice report; `dev`, `eval_split`, `trigger`, and
      `bootstrap` = {recipe, sources, postprocess figures, seed, epochs_run, best_epoch,
      train_seconds}; `manifest.bootstrap` = the corpus counts.
    - retrain worker: `metrics` = {eval, active_eval, dev, epochs_run}; `version`, `parent`,
      `trigger`, `requested_by`, `run_id`, and `postprocess` when it ran.
    - `sentibot train` (and the library): `metrics` = the dev report; `source` = the data file.

    Every `manifest` held the data manifest plus `train_config` (recipe and machine settings).
    """
    rest = dict(old)
    metrics, manifest = rest.pop("metrics"), dict(rest.pop("manifest", None) or {})
    recipe = dict(manifest.pop("train_config", None) or {})
    for key in _RUN_KEYS:
        recipe.pop(key, None)
    boot = rest.pop("bootstrap", None)
    card: dict[str, Any] = {
        "recipe": recipe,
        "data": manifest,
        "versions": rest.pop("versions", {}),
    }
    if isinstance(metrics, dict) and _is_report(metrics.get("eval")):  # retrain worker
        card.update(kind="retrain", eval=metrics["eval"], dev=metrics.get("dev"))
        card.update(active_eval=metrics.get("active_eval"), eval_split="the eval split")
        card["training"] = {"epochs_run": metrics.get("epochs_run")}
    elif isinstance(boot, dict) or rest.get("trigger") == "bootstrap":
        boot = boot or {}
        card.update(kind="bootstrap", eval=metrics if _is_report(metrics) else None)
        card.update(dev=rest.pop("dev", None), eval_split=rest.pop("eval_split", None))
        rest.pop("trigger", None)
        card["training"] = {
            "epochs_run": boot.pop("epochs_run", None),
            "best_epoch": boot.pop("best_epoch", None),
            "seconds": boot.pop("train_seconds", None),
        }
        post = {k: boot.pop(k) for k in _BOOTSTRAP_POST if k in boot}
        card["postprocess"] = post or None
        boot.pop("seed", None)  # the recipe has it
        if "recipe" in boot:  # the build's steps, not the training recipe
            boot["bootstrap_recipe"] = boot.pop("recipe")
        rest.update(boot)  # the build's steps and the data's sources
    else:
        card.update(kind="train", dev=metrics if _is_report(metrics) else None)
    if "postprocess" in rest:
        card["postprocess"] = rest.pop("postprocess")
    source = rest.pop("source", None)
    card["origin"] = {**(source if isinstance(source, dict) else {}), **rest}
    return card


_UPGRADES = {0: _from_unversioned}
