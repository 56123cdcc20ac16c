"""Admin commands of the learning loop: /retrain [force], /models, /rollback [version].

All three are gated to ADMIN_IDS when registered; everyone else gets the "admins only" fallback.
/retrain answers at once with one progress message that is edited as epochs finish; the run
goes on in a background task, so the bot (this chat included) keeps answering meanwhile. The
report: both models' macro-F1, per-class recall, the decision and why, and a confusion-matrix
image of the candidate. `bot.jobs` sends the scheduled runs' reports the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from telegram import Bot, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot import charts, texts
from bot.config import Settings
from bot.handlers.common import add_command, runtime
from bot.learning.errors import LearningError, RollbackError
from bot.learning.results import Progress, RetrainOutcome
from bot.learning.retrainer import Retrainer

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^v\d{1,8}$")
MIN_EDIT_INTERVAL_S = 1.0  # don't edit the progress message more than once a second
TASKS_KEY = "learning_tasks"  # application.bot_data: background training tasks


def start_background(application: Application, coro: Coroutine[Any, Any, Any], name: str) -> None:
    """Run a training run and its report beside the bot.

    Not `application.create_task`: `Application.stop()` waits for those, so stopping the bot
    would wait for the whole training run. These tasks end when `LearningService.close()` (run
    on shutdown) kills the worker; a reference is kept so they are not garbage-collected.
    """
    tasks: set[asyncio.Task] = application.bot_data.setdefault(TASKS_KEY, set())
    task = asyncio.get_running_loop().create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def send_report(
    bot: Bot,
    chat_id: int,
    outcome: RetrainOutcome,
    *,
    heading: str = texts.RETRAIN_HEADING,
    edit: Message | None = None,
    footer: str | None = None,
) -> None:
    """Send (or edit `edit` into) the report, then the candidate's confusion matrix."""
    text = texts.retrain_report(outcome, heading, footer)
    if edit is not None:
        try:
            await edit.edit_text(text)
        except TelegramError:
            log.info("could not edit the progress message; sending the report", exc_info=True)
            edit = None
    if edit is None:
        await bot.send_message(chat_id, text)
    report = outcome.candidate_report
    if report and report.get("confusion"):
        version = outcome.candidate_version
        title = texts.CONFUSION_TITLE.format(version=version, rows=report.get("n", "?"))
        png = await charts.render_confusion(report, title)
        await bot.send_photo(chat_id, png, caption=texts.CONFUSION_CAPTION.format(version=version))
    curve = outcome.learning_curve
    if curve and len(curve.get("points") or []) >= 2:
        png = await charts.render_learning_curve(curve, texts.CURVE_TITLE)
        await bot.send_photo(chat_id, png, caption=texts.CURVE_CAPTION)


async def tell_admins_of_flags(bot: Bot, admin_ids: list[int], outcome: RetrainOutcome) -> None:
    """Every admin hears once of each label source that looks far less reliable than the rest."""
    for source, reliability in outcome.flagged:
        text = texts.flag_text(source, reliability, outcome.names)
        for admin_id in admin_ids:
            try:
                await bot.send_message(admin_id, text)
            except TelegramError:  # an admin who never opened a chat with the bot
                log.info("could not tell admin %d of a flag", admin_id, exc_info=True)


async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a training run (admins); `force` trains even without new labels."""
    args = [a.lower() for a in (context.args or [])]
    message = update.effective_message
    if args not in ([], ["force"]):
        await message.reply_text(texts.RETRAIN_USAGE)
        return
    retrainer = runtime(context).learning.retrainer
    if retrainer.training:
        await message.reply_text(texts.sentence(texts.IN_PROGRESS))
        return
    if not args and not (await retrainer.new_labels("admin")).enough:
        await message.reply_text(texts.NO_NEW_LABELS)
        return
    progress = await message.reply_text(texts.RETRAIN_STARTING)
    task = _retrain_task(context.bot, retrainer, update.effective_user.id, progress, bool(args))
    start_background(context.application, task, "admin-retrain")


async def _retrain_task(
    bot: Bot, retrainer: Retrainer, who: int, progress: Message, force: bool
) -> None:
    """The run itself, in the background; edits `progress`, then reports."""
    last_edit = 0.0

    async def on_progress(step: Progress) -> None:
        nonlocal last_edit
        final_epoch = step.stage == "training" and step.epoch and step.epoch == step.epochs
        if time.monotonic() - last_edit < MIN_EDIT_INTERVAL_S and not final_epoch:
            return
        last_edit = time.monotonic()
        try:
            await progress.edit_text(
                texts.PROGRESS.format(step=texts.esc(texts.progress_text(step)))
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise

    try:
        outcome = await retrainer.retrain("admin", who, on_progress=on_progress, force=force)
        if retrainer.closing:  # the bot is stopping: no one to tell
            return
        await send_report(bot, progress.chat_id, outcome, edit=progress)
        await tell_admins_of_flags(bot, retrainer.settings.admin_ids, outcome)
    except LearningError as exc:
        try:
            await progress.edit_text(texts.sentence(exc))
        except TelegramError:  # a background task: nobody else would see it
            log.warning("could not tell the admin the run was refused", exc_info=True)
    except TelegramError:
        log.warning("could not send the retrain report", exc_info=True)
    except Exception:  # a background task: nobody else would see it
        log.exception("the /retrain report failed")


async def models(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List model versions, newest first, and chart their macro-F1 (admins)."""
    listed = await runtime(context).learning.versions.list_models()
    await update.effective_message.reply_text(texts.models_text(listed))
    points = charts.version_points(list(reversed(listed)))
    if points:
        png = await charts.render_versions(points, texts.MODELS_CHART_TITLE)
        await update.effective_message.reply_photo(png, caption=texts.MODELS_CHART_CAPTION)


async def rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Make the previous (or the named) version active again, after checking it scores (admins)."""
    args, message = context.args or [], update.effective_message
    if len(args) > 1 or (args and not _VERSION.match(args[0].lower())):
        await message.reply_text(texts.ROLLBACK_USAGE)
        return
    target = args[0].lower() if args else None
    try:
        done = await runtime(context).learning.versions.rollback(update.effective_user.id, target)
    except RollbackError as exc:
        await message.reply_text(texts.esc(texts.ROLLBACK_REFUSED.format(reason=exc)))
        return
    await message.reply_text(texts.esc(texts.rolled_back(done)))


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "retrain", retrain, "admin")
    add_command(application, settings, "models", models, "admin")
    add_command(application, settings, "rollback", rollback, "admin")
