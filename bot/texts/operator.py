"""What the operator sees on the command line: which model answered, the epochs of a training
run, what `train` / `bootstrap` wrote and registered, the model registry (`sentibot models …`),
data in and out, and the one-line errors for bad settings. Plain text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.texts.admin import rolled_back
from classifier.progress import format_seconds

if TYPE_CHECKING:  # only for type hints: texts imports nothing of the bot at run time
    from bot.learning.registry import DeleteOutcome, VersionEntry
    from bot.learning.results import RollbackOutcome
    from classifier.card import ModelCard

# --- which model answered (`predict`, `eval`) ----------------------------------------------------
ANSWERED_BY = "answered by {version} ({how})"
HOW_ACTIVE = "the active version"
HOW_OPTION = "--model"
HOW_NEWEST = (
    "no version is active yet: the newest folder in MODEL_DIR, which the first start activates"
)
NO_MODEL = (
    "no model in MODEL_DIR={path}: run `sentibot bootstrap` or `sentibot train --data FILE.csv` "
    "first, or pass --model DIR"
)
ACTIVE_DOES_NOT_LOAD = (
    "the active model {version} does not load: {error}. If MODEL_DIR moved, set MODEL_DIR (or "
    "DATA_DIR) to where the folders are; `sentibot models list` shows every version and "
    "`sentibot models activate VERSION` serves another"
)
FIRST_START_REASON = "first start: the newest loadable folder in MODEL_DIR"
PREDICT_NO_INPUT = (
    "predict needs texts: TEXT..., `-` to read one text per line from stdin, or --file PATH"
)
PREDICT_BOTH_INPUTS = "give either texts, `-` (stdin) or --file PATH, not several"
REPLACED_BYTES = "{lines} line(s) were not valid UTF-8: undecodable bytes were read as U+FFFD"
EVAL_ON = "model {version} ({how}) on {data}:"
EVAL_PLOT_TITLE = "{version} on {data}"
DEV_CURVE_TITLE = "{version}: dev macro-F1 per epoch"
PLOT_WRITTEN = "chart written to {path}"
NOTHING_TO_PLOT = "nothing to plot: {what}"


# --- training ------------------------------------------------------------------------------------
def epoch_line(epoch: int, epochs: int, f1: float, elapsed: float, eta: float, best: bool) -> str:
    """`epoch 3/10: dev macro-F1 0.612 (best so far), 14 s elapsed, ETA 33 s`"""
    s = format_seconds
    mark = " (best so far)" if best else ""
    left = f", ETA {s(eta)}" if epoch < epochs else ""
    return f"epoch {epoch}/{epochs}: dev macro-F1 {f1:.3f}{mark}, {s(elapsed)} elapsed{left}"


def epochs_summary(card: ModelCard) -> str:
    """`stopped early at epoch 4 of 5 (best: 2)` or `ran all 5 epochs (best: 5)`."""
    t, budget = card.training, card.recipe.get("epochs")
    curve = {p.get("epoch"): p.get("dev_macro_f1") for p in t.dev_curve}
    best = curve.get(t.best_epoch)
    at_best = f", dev macro-F1 {best:.3f}" if isinstance(best, float) else ""
    if budget and t.epochs_run is not None and t.epochs_run < budget:
        patience = card.recipe.get("patience")
        why = f": no improvement for {patience} epochs" if patience else ""
        return (
            f"stopped early at epoch {t.epochs_run} of {budget} "
            f"(best: {t.best_epoch}{at_best}){why}; the best epoch's weights are kept"
        )
    return f"ran all {t.epochs_run} epochs (best: {t.best_epoch}{at_best})"


WHERE_DEV = {
    "split": "dev split",
    "explicit": "dev set",
    "train": "training data (too few rows for a dev split)",
}
REGISTERED = "registered as candidate {version}; serve it with: sentibot models activate {version}"
NOT_REGISTERED = "not registered: {reason}"
MODEL_WRITTEN = "model written to {path}"


def bootstrap_summary(card: ModelCard) -> list[str]:
    """The bootstrap build's numbers, one consistent set: the epochs (dev slice, raw model),
    what the after-training steps changed, and the held-out eval slice (what /status quotes)."""
    lines = [epochs_summary(card)]
    post, ev = card.postprocess or {}, card.eval or {}
    before = post.get("before") or {}
    if post:
        lines.append("after training, the bootstrap recipe's last steps:")
        if post.get("lexicon_prior_rows"):
            lines.append(
                f"  - VADER's valences written into {post['lexicon_prior_rows']:,} word vectors"
            )
        if post.get("temperature") is not None:
            lines.append(
                f"  - temperature {post['temperature']:g} on the logits: confidences only, "
                "labels unchanged"
            )
        if post.get("label_prior"):
            shifts = ", ".join(f"{k} {v:+.2f}" for k, v in post["label_prior"].items())
            lines.append(
                f"  - chat label prior ({shifts}): everyday chat is less often negative than "
                "these tweets"
            )
    dev_after = (card.dev or {}).get("macro_f1")
    if before and dev_after is not None and ev:
        lines.append(
            "  these tune the model for everyday chat rather than for the tweet corpus: "
            f"dev macro-F1 {before['dev_macro_f1']:.3f} → {dev_after:.3f}, "
            f"eval slice {before['eval_macro_f1']:.3f} → {ev['macro_f1']:.3f}"
        )
    if ev:
        lines.append(
            f"held-out eval slice ({ev['n']:,} tweets never trained on): macro-F1 "
            f"{ev['macro_f1']:.3f}, accuracy {ev['accuracy']:.3f}: the figures the model "
            "card, `sentibot models list` and /status quote"
        )
    return lines


# --- the registry: `sentibot models …` -----------------------------------------------------------
REGISTRY_UNKNOWN = (
    "there is no model version or MODEL_DIR folder named {version} (`sentibot models list` shows "
    "them)"
)
REGISTRY_NAME_TAKEN = (
    "a version named {version} is already registered with another folder ({folder}); copy the "
    "model folder into MODEL_DIR under a free name"
)
REGISTRY_FOLDER_MISSING = "folder {folder} is missing"
DELETE_ACTIVE = (
    "{version} is the active model: activate another one first (`sentibot models activate "
    "VERSION` or `sentibot models rollback`), then delete it"
)
FORCE_HINT = "; `sentibot models activate {version} --force` activates it anyway"
NO_VERSIONS = "no model versions yet: `sentibot bootstrap` or `sentibot train --data FILE.csv`"
LIST_HEADER = ("version", "status", "backbone", "rows", "macro-F1", "measured on")


def models_table(entries: list[VersionEntry]) -> list[str]:
    """`sentibot models list` as an aligned table, plus a line per problem."""
    rows = [LIST_HEADER]
    for e in entries:
        rows.append(
            (
                e.version,
                e.status,
                e.backbone or "?",
                "?" if e.train_rows is None else f"{e.train_rows:,}",
                "?" if e.macro_f1 is None else f"{e.macro_f1:.3f}",
                "?" if e.eval_set is None else e.eval_set.short(),
            )
        )
    # Every column but the last padded to its widest cell.
    widths = [max(len(r[i]) for r in rows) for i in range(len(LIST_HEADER) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in rows
    ]
    lines += [f"{e.version}: {e.problem}" for e in entries if e.problem]
    return lines


def activated(done: RollbackOutcome) -> str:
    return rolled_back(done, "Activated").removeprefix("↩️ ")


def deleted(done: DeleteOutcome) -> list[str]:
    if done.removed_folder:
        what = "its folder and registry row"
    else:
        what = f"its registry row (the folder {done.folder} is outside MODEL_DIR: kept)"
    after = (
        f"/rollback without a version now goes back to {done.rollback_to}"
        if done.rollback_to
        else "there is no earlier active version left for /rollback to go back to"
    )
    return [f"deleted {done.version}: {what}", f"{after}; a deleted version cannot come back"]


# --- data in and out -----------------------------------------------------------------------------
EXPORTED = "wrote {count} {what} to {path}"
IMPORT_CHAT_TITLE = "sentibot import"  # the pseudo chat `import --unlabelled` stores texts in
IMPORTED_UNLABELLED = (
    "queued {new} new text(s) from {path} for labeling ({skipped} already there), scored by "
    "{version}: /label shows them"
)


# --- bad settings (one line each, exit 2) --------------------------------------------------------
SETTING_HINT = "set it in the environment or .env (.env.example lists every setting)"
SYNC_SQLITE = "DATABASE_URL={url} uses the synchronous sqlite driver: use sqlite+aiosqlite://{rest}"
SYNC_POSTGRES = (
    "DATABASE_URL={url} needs the async driver: use postgresql+asyncpg://{rest} "
    "(pip install 'sentibot[postgres]')"
)
NO_ASYNCPG = (
    "DATABASE_URL={url} needs asyncpg, which is not installed: pip install 'sentibot[postgres]'"
)
