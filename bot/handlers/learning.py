"""Admin commands of the learning loop: /retrain [force], /models, /rollback [version].

All three are gated to ADMIN_IDS when registered; everyone else gets the "admins only" fallback.
/retrain answers at once with one progress message that is edited as epochs finish; the run
goes on in a background task, so the bot (this chat included) keeps answering meanwhile. The
report: both models' macro-F1, per-class recall, the decision and why, and a confusion-matrix
image of the candidate.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from typing import Any

from telegram import Bot, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot import jobs, texts
from bot.handlers.common import add_command, reply, runtime
from bot.learning import (
    IN_PROGRESS,
    LearningError,
    ModelInfo,
    Progress,
    RetrainOutcome,
    RollbackError,
    attach_learning,
)

log = logging.getLogger(__name__)

RETRAIN_USAGE = "Usage: /retrain, or /retrain force to train even without new labels."
NO_NEW_LABELS = (
    "No new labels since the last training run, so there is nothing new to learn. "
    "/retrain force trains anyway."
)
ROLLBACK_USAGE = "Usage: /rollback (to the previous active version) or /rollback v0003."
_VERSION = re.compile(r"^v\d{1,8}$")
MIN_EDIT_INTERVAL_S = 1.0  # don't edit the progress message more than once a second


# --- report rendering ---------------------------------------------------------------------------
def report_html(
    outcome: RetrainOutcome, heading: str = "Retraining", footer: str | None = None
) -> str:
    """The outcome as an HTML message (no user text in it, but escaped all the same)."""
    icon = {"promoted": "✅", "rejected": "⛔", "failed": "❌", "skipped": "ℹ️"}.get(
        outcome.status, ""
    )
    lines = [f"{icon} <b>{texts.esc(heading)}: {texts.esc(outcome.status)}</b>"]
    lines += [texts.esc(line) for line in outcome.summary_lines()]
    if outcome.seconds and outcome.status != "skipped":
        lines.append(texts.esc(f"Took {outcome.seconds:.0f} s."))
    if footer:
        lines.append(texts.esc(footer))
    return texts.fit("\n".join(lines))


def confusion_png(report: dict[str, Any], title: str) -> bytes:
    """A confusion-matrix heat map (rows: true label, columns: predicted) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(report.get("restricted_to") or report["labels"])
    matrix = report["confusion"]
    figure = Figure(figsize=(4.6, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            color = "white" if value > peak / 2 else "black"
            axes.text(j, i, str(value), ha="center", va="center", color=color)
    axes.set_xticks(range(len(matrix[0])), labels[: len(matrix[0])])
    axes.set_yticks(range(len(matrix)), labels[: len(matrix)])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


async def send_report(
    bot: Bot,
    chat_id: int,
    outcome: RetrainOutcome,
    *,
    heading: str = "Retraining",
    edit: Message | None = None,
    footer: str | None = None,
) -> None:
    """Send (or edit `edit` into) the report, then the candidate's confusion matrix."""
    text = report_html(outcome, heading, footer)
    if edit is not None:
        try:
            await edit.edit_text(text, parse_mode=ParseMode.HTML)
        except TelegramError:
            log.info("could not edit the progress message; sending the report", exc_info=True)
            edit = None
    if edit is None:
        await bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
    report = outcome.candidate_report
    if report and report.get("confusion"):
        title = f"{outcome.candidate_version} on the eval split ({report.get('n', '?')} rows)"
        png = await asyncio.to_thread(confusion_png, report, title)
        await bot.send_photo(
            chat_id, png, caption=f"Confusion matrix of {outcome.candidate_version}"
        )


def models_html(models: list[ModelInfo]) -> str:
    if not models:
        return "No model versions yet."
    lines = ["<b>Model versions</b> (newest first)"]
    for m in models:
        created = f"{m.created_at:%Y-%m-%d %H:%M}" if m.created_at else "?"
        rows = "?" if m.train_rows is None else f"{m.train_rows:,}"
        f1 = "?" if m.eval_macro_f1 is None else f"{m.eval_macro_f1:.3f}"
        status = f"<b>{m.status}</b>" if m.status == "active" else m.status
        lines.append(
            f"{texts.esc(m.version)} · {texts.esc(created)} · {status} · {rows} training rows"
            f" · eval macro-F1 {f1}"
        )
    return texts.fit("\n".join(lines))


# --- handlers -----------------------------------------------------------------------------------
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a training run (admins); `force` trains even without new labels."""
    args = [a.lower() for a in (context.args or [])]
    if args not in ([], ["force"]):
        await reply(update, RETRAIN_USAGE)
        return
    learning = runtime(context).learning
    if learning.training:
        await reply(update, texts.esc(IN_PROGRESS.capitalize() + "."))
        return
    if not args and await learning.new_label_count() == 0:
        await reply(update, NO_NEW_LABELS)
        return
    progress = await reply(update, "⏳ Starting a training run…")
    task = _retrain_task(context.bot, learning, update.effective_user.id, progress, bool(args))
    jobs.start_background(context.application, task, "admin-retrain")


async def _retrain_task(bot: Bot, learning: Any, who: int, progress: Message, force: bool) -> None:
    """The run itself, in the background; edits `progress`, then reports."""
    last_edit = 0.0

    async def on_progress(step: Progress) -> None:
        nonlocal last_edit
        final_epoch = step.stage == "training" and step.epoch and step.epoch == step.epochs
        if time.monotonic() - last_edit < MIN_EDIT_INTERVAL_S and not final_epoch:
            return
        last_edit = time.monotonic()
        try:
            await progress.edit_text("⏳ " + texts.esc(step.text()), parse_mode=ParseMode.HTML)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise

    try:
        outcome = await learning.retrain("admin", who, on_progress=on_progress, force=force)
        if learning.closing:  # the bot is stopping: no one to tell
            return
        await send_report(bot, progress.chat_id, outcome, edit=progress)
    except LearningError as exc:
        try:
            await progress.edit_text(texts.esc(str(exc).capitalize() + "."))
        except TelegramError:  # a background task: nobody else would see it
            log.warning("could not tell the admin the run was refused", exc_info=True)
    except TelegramError:
        log.warning("could not send the retrain report", exc_info=True)
    except Exception:  # a background task: nobody else would see it
        log.exception("the /retrain report failed")


async def models(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List model versions, newest first (admins)."""
    await reply(update, models_html(await runtime(context).learning.list_models()))


async def rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Make the previous (or the named) version active again, after checking it scores (admins)."""
    args = context.args or []
    if len(args) > 1 or (args and not _VERSION.match(args[0].lower())):
        await reply(update, ROLLBACK_USAGE)
        return
    target = args[0].lower() if args else None
    try:
        done = await runtime(context).learning.rollback(update.effective_user.id, target)
    except RollbackError as exc:
        await reply(update, "Can't roll back: " + texts.esc(str(exc)) + ".")
        return
    await reply(
        update,
        texts.esc(
            f"↩️ Rolled back: {done.from_version} → {done.to_version} is now active "
            f"(eval macro-F1 {done.macro_f1:.3f} on {done.eval_rows:,} rows)."
        ),
    )


async def on_startup(application: Application, runtime_: Any) -> None:
    """Called by `bot.app` right after the runtime opens: plug the learning loop in."""
    if runtime_.learning is None:
        await attach_learning(runtime_)


def register(application: Application, settings: Any) -> None:
    add_command(application, settings, "retrain", retrain, "retrain the model now", "admin")
    add_command(application, settings, "models", models, "model versions", "admin")
    add_command(application, settings, "rollback", rollback, "go back to an earlier model", "admin")
    jobs.schedule(application, settings)
