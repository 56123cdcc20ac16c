"""/forget: delete everything stored about this person, after a confirmation button."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import keyboards, texts
from bot.handlers.common import add_command, reply, runtime


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for confirmation with Yes/No buttons that only the asker can press."""
    markup = keyboards.forget_keyboard(update.effective_user.id)
    await reply(update, texts.FORGET_ASK, reply_markup=markup)


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
    done = texts.forget_done(result.messages, result.labels)
    await query.edit_message_text(done, parse_mode=ParseMode.HTML)


def register(application: Application, settings: Any) -> None:
    add_command(application, settings, "forget", forget, "delete everything I stored about you")
    application.add_handler(CallbackQueryHandler(confirm, pattern=keyboards.FORGET_PATTERN))
