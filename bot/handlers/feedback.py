"""Feedback buttons under a scored reply: record the presser's label, show it, keep the buttons."""

from __future__ import annotations

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import keyboards, texts
from bot.config import Settings
from bot.handlers.common import author_of, runtime


async def feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Store the pressed label (source `inline`) and edit the reply to `✓ you said: …`."""
    query = update.callback_query
    parsed = keyboards.parse_feedback(query.data)
    if parsed is None or query.message is None:
        await query.answer(texts.FEEDBACK_INVALID)
        return
    service = runtime(context).service
    result = await service.record_label(
        parsed.message_id, author_of(update), parsed.label, chat_id=query.message.chat.id
    )
    await query.answer(texts.feedback_answer(result.outcome, result.label))
    if result.outcome != "ok" or result.predicted is None:
        return
    who = None if query.message.chat.type == "private" else query.from_user.first_name
    text = texts.feedback_done(result.predicted, result.confidence or 0.0, result.label, who)
    markup = keyboards.feedback_keyboard(parsed.message_id, service.labels)
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # two presses racing to the same text: nothing to change
        if "not modified" not in exc.message.lower():
            raise


def register(application: Application, settings: Settings) -> None:
    application.add_handler(CallbackQueryHandler(feedback, pattern=keyboards.FEEDBACK_PATTERN))
