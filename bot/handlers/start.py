"""/start and /help: what the bot does, what it stores, the commands this person may use."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot import texts
from bot.config import Settings
from bot.handlers.common import add_command, author_of, commands_for, runtime


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet, opt the person back in if they had used /forget, and show the help."""
    author = author_of(update)
    opted_back_in = author is not None and await runtime(context).service.opt_in(author)
    await _send_help(update, context, opted_back_in=opted_back_in)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show what the bot does and the commands this person may use."""
    await _send_help(update, context)


async def _send_help(
    update: Update, context: ContextTypes.DEFAULT_TYPE, *, opted_back_in: bool = False
) -> None:
    user_id = update.effective_user.id if update.effective_user else None
    commands = commands_for(context.application, runtime(context).settings, user_id)
    text = texts.help_text([(c.name, c.description) for c in commands], opted_back_in=opted_back_in)
    await update.effective_message.reply_text(text)


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "start", start)
    add_command(application, settings, "help", help_command)
