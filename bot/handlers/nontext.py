"""Stickers, photos, voice and other non-text messages in private chats: "I read text only"."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot import texts
from bot.config import Settings

NON_TEXT = (
    filters.ChatType.PRIVATE
    & filters.UpdateType.MESSAGE
    & ~filters.TEXT
    & ~filters.StatusUpdate.ALL
)


async def text_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell the person the bot reads text only."""
    await update.effective_message.reply_text(texts.TEXT_ONLY)


def register(application: Application, settings: Settings) -> None:
    application.add_handler(MessageHandler(NON_TEXT, text_only))
