"""Helpers every handler module uses: the runtime, who/where from an update, gated commands.

Commands are registered through `add_command(...)` with a role (`everyone`, `annotator`,
`admin`). Gated commands get `filters.User(user_id=...)` at registration (never an `if id in
ADMINS` inside a handler); `bot.app` then adds one fallback per role that answers "admins only" /
"annotators only" to everyone else, registers the menu with `set_my_commands`, and /help lists
exactly the commands a person may use.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot import texts
from bot.config import Settings
from bot.runtime import Runtime
from bot.service import Author, ChatRef

Role = Literal["everyone", "annotator", "admin"]
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, Any]]
COMMANDS_KEY = "commands"


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    description: str
    role: Role


def runtime(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return context.application.bot_data["runtime"]


def author_of(update: Update) -> Author | None:
    user = update.effective_user
    if user is None:
        return None
    return Author(user.id, user.username, user.first_name)


def chat_of(update: Update) -> ChatRef:
    chat = update.effective_chat
    assert chat is not None
    return ChatRef(chat.id, chat.type, chat.title)


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == "private"


def role_ids(settings: Settings, role: Role) -> set[int] | None:
    """User ids allowed for a role; None means everyone."""
    if role == "admin":
        return set(settings.admin_ids)
    if role == "annotator":
        return settings.annotators
    return None


def add_command(
    application: Application,
    settings: Settings,
    name: str,
    callback: Callback,
    role: Role = "everyone",
) -> None:
    """Register `/name`, gated by role when it is not for everyone, and list it for /help with
    its description from `texts.COMMAND_DESCRIPTIONS`."""
    allowed = role_ids(settings, role)
    # New messages only: PTB's CommandHandler also fires on edits, which would run /forget,
    # /retrain or /export again when someone fixes a typo in an old message.
    only = filters.UpdateType.MESSAGE
    if allowed is not None:
        only = only & filters.User(user_id=allowed, allow_empty=False)
    application.add_handler(CommandHandler(name, callback, filters=only))
    commands: list[CommandInfo] = application.bot_data.setdefault(COMMANDS_KEY, [])
    commands.append(CommandInfo(name, texts.COMMAND_DESCRIPTIONS[name], role))


def commands_for(
    application: Application, settings: Settings, user_id: int | None
) -> list[CommandInfo]:
    """The registered commands this person may use, in registration order."""
    commands: list[CommandInfo] = application.bot_data.get(COMMANDS_KEY, [])
    return [c for c in commands if may_use(settings, c.role, user_id)]


def may_use(settings: Settings, role: Role, user_id: int | None) -> bool:
    allowed = role_ids(settings, role)
    return allowed is None or (user_id is not None and user_id in allowed)
