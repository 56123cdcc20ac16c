"""/forget: delete everything stored about this person, after a confirmation button."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import keyboards, texts
from bot.config import Settings
from bot.handlers.common import add_command, runtime


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for confirmation with Yes/No buttons that only the asker can press."""
    markup = keyboards.forget_keyboard(update.effective_user.id)
    await update.effective_message.reply_text(texts.FORGET_ASK, reply_markup=markup)


async def confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """On Yes delete everything about the asker; on No keep it; say which happened."""
    query = update.callback_query
    choice = keyboards.parse_forget(query.data)
    if choice is None or choice.user_id != query.from_user.id:
        await query.answer(texts.FORGET_NOT_YOURS if choice else texts.FEEDBACK_INVALID)
        return
    await query.answer()
    if not choice.confirmed:
        await query.edit_message_text(texts.FORGET_CANCELLED)
        return
    result = await runtime(context).service.forget(choice.user_id)
    await query.edit_message_text(texts.forget_done(result.messages, result.labels))


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "forget", forget)
    application.add_handler(CallbackQueryHandler(confirm, pattern=keyboards.FORGET_PATTERN))
