"""/mood [24h|7d]: the distribution of predicted labels in this chat, as text and a chart with
the trend (per hour over 24h, else per day)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot import charts, texts
from bot.config import Settings
from bot.handlers.common import add_command, chat_of, runtime
from bot.service import WINDOWS


async def mood(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with label counts and percentages for this chat, then the chart image."""
    window = context.args[0].lower() if context.args else "all"
    if window not in WINDOWS or len(context.args or []) > 1:
        await update.effective_message.reply_text(texts.MOOD_USAGE)
        return
    report = await runtime(context).service.mood(chat_of(update).id, window)
    await update.effective_message.reply_text(texts.mood_text(report))
    if report.total:
        png = await charts.render_mood_chart(
            report.counts, texts.mood_caption(report), report.trend
        )
        await update.effective_message.reply_photo(png, caption=texts.mood_caption(report))


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "mood", mood)
