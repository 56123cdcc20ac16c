"""Admin commands: /status (model, metrics, counts) and /export (labelled data as CSV)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot import texts
from bot.handlers.common import add_command, is_private, reply, runtime

EXPORT_PRIVATE_ONLY = (
    "The export holds messages from every chat, private ones too: send /export in a private "
    "chat with me."
)


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Active model and eval metrics, message/label counts, labels not yet trained on."""
    report = await runtime(context).service.status()
    await reply(update, texts.status_text(report))


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every labelled message as a CSV document (in a private chat only)."""
    if not is_private(update):  # a group would see everyone's private messages
        await reply(update, EXPORT_PRIVATE_ONLY)
        return
    result = await runtime(context).service.export()
    if result.rows == 0:
        await reply(update, texts.EXPORT_EMPTY)
        return
    name = f"sentibot-labels-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    caption = texts.EXPORT_CAPTION.format(rows=result.rows)
    await update.effective_message.reply_document(result.csv, filename=name, caption=caption)


def register(application: Application, settings: Any) -> None:
    add_command(application, settings, "status", status, "model, metrics and counts", "admin")
    add_command(application, settings, "export", export, "labelled data as CSV", "admin")
