"""Admin commands: /status (model, metrics, counts, learning loop) and /export (labelled CSV)."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot import texts
from bot.config import Settings
from bot.handlers.common import add_command, is_private, runtime


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Active model and eval metrics, message/label counts, the learning loop's state."""
    rt = runtime(context)
    status = await rt.learning.status()
    text = texts.status_text(await rt.service.status(), status, private=is_private(update))
    await update.effective_message.reply_text(text)


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every labelled message as a CSV document (in a private chat only)."""
    if not is_private(update):  # a group would see everyone's private messages
        await update.effective_message.reply_text(texts.EXPORT_PRIVATE_ONLY)
        return
    result = await runtime(context).service.export()
    if result.rows == 0:
        await update.effective_message.reply_text(texts.EXPORT_EMPTY)
        return
    name = f"sentibot-labels-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    caption = texts.EXPORT_CAPTION.format(rows=result.rows)
    await update.effective_message.reply_document(result.csv, filename=name, caption=caption)


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "status", status, "admin")
    add_command(application, settings, "export", export, "admin")
