"""Text messages: score and store every one; reply (label, confidence, feedback buttons) in
private chats and, with GROUP_MODE=reply, in groups. Edited messages are re-scored."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot import keyboards, texts
from bot.config import Settings
from bot.handlers.common import author_of, chat_of, is_private, runtime
from bot.service import ScoreResult

TEXT = filters.TEXT & ~filters.COMMAND


async def score_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Score and store a new text message; answer where the bot talks."""
    result = await _score(update, context)
    if _talks_here(update, context):
        await _answer(update, context, result, texts.score_reply(result))


async def rescore_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Re-score an edited message (the stored text and prediction are replaced/added)."""
    result = await _score(update, context)
    if _talks_here(update, context):
        await _answer(update, context, result, texts.EDITED_PREFIX + texts.score_reply(result))


async def _score(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ScoreResult:
    message = update.effective_message
    return await runtime(context).service.score_message(
        chat_of(update),
        author_of(update),
        message.text,
        telegram_message_id=message.message_id,
        received_at=message.edit_date or message.date,  # an edit is stamped when it was made
    )


def _talks_here(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return is_private(update) or runtime(context).settings.group_mode == "reply"


async def _answer(
    update: Update, context: ContextTypes.DEFAULT_TYPE, result: ScoreResult, text: str
) -> None:
    markup = None
    if result.message_id is not None:
        markup = keyboards.feedback_keyboard(result.message_id, runtime(context).service.labels)
    await update.effective_message.reply_text(text, reply_markup=markup)


def register(application: Application, settings: Settings) -> None:
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & TEXT, score_text))
    application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & TEXT, rescore_edit))
