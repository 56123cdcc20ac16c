"""/label: one message that walks an annotator through the labeling queue.

The message shows the item's text, one button per label, and Skip / Undo / Stop. Every answer
edits the same message to show the next item (most uncertain first), until the queue is empty
or the person presses Stop. Annotators and admins only, in private chats (queue items come from
every chat, so they are never shown in a group).

Callback data (parsed only in `parse_queue_data`, at most 64 bytes):
`q:l:<message_id>:<label>` label, `q:s:<message_id>` skip, `q:u` undo, `q:x` stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import texts
from bot.config import Settings
from bot.handlers.common import add_command, is_private, may_use, runtime
from bot.learning.errors import LearningError
from bot.learning.results import QueueView
from classifier.data import LABEL_NAME

QUEUE_PATTERN = r"^q:"
_DATA = re.compile(rf"^q:(?:(l):(\d{{1,18}}):({LABEL_NAME})|(s):(\d{{1,18}})|(u)|(x))$")
SESSION_KEY = "label_session"  # context.user_data: labels given in the current /label session


@dataclass(frozen=True, slots=True)
class QueueAction:
    kind: str  # label | skip | undo | stop
    message_id: int | None = None
    label: str | None = None


def parse_queue_data(data: str | None) -> QueueAction | None:
    """Callback data → QueueAction, or None when forged, truncated or from an old version."""
    match = _DATA.match(data or "")
    if match is None:
        return None
    if match.group(1):
        return QueueAction("label", int(match.group(2)), match.group(3))
    if match.group(4):
        return QueueAction("skip", int(match.group(5)))
    return QueueAction("undo" if match.group(6) else "stop")


def queue_keyboard(message_id: int, labels: list[str]) -> InlineKeyboardMarkup:
    """One button per label, then Skip / Undo / Stop."""
    row = [
        InlineKeyboardButton(texts.label_button(label), callback_data=f"q:l:{message_id}:{label}")
        for label in labels
    ]
    names = texts.QUEUE_BUTTONS
    controls = [
        InlineKeyboardButton(names["skip"], callback_data=f"q:s:{message_id}"),
        InlineKeyboardButton(names["undo"], callback_data="q:u"),
        InlineKeyboardButton(names["stop"], callback_data="q:x"),
    ]
    return InlineKeyboardMarkup([row, controls])


def _session(context: ContextTypes.DEFAULT_TYPE) -> int:
    return int(context.user_data.get(SESSION_KEY, 0)) if context.user_data is not None else 0


def _bump(context: ContextTypes.DEFAULT_TYPE, delta: int) -> int:
    value = max(0, _session(context) + delta)
    if context.user_data is not None:
        context.user_data[SESSION_KEY] = value
    return value


def _render(view: QueueView, done: int) -> tuple[str, InlineKeyboardMarkup | None]:
    if view.paused:
        return texts.QUEUE_PAUSED, None
    if view.item is None:
        return f"{texts.QUEUE_EMPTY}\n{texts.queue_progress(done, 0)}", None
    return texts.queue_item(view, done), queue_keyboard(view.item.message_id, view.labels)


async def label_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a labeling session: show the first (most uncertain) item."""
    if not is_private(update):
        await update.effective_message.reply_text(texts.LABEL_PRIVATE_ONLY)
        return
    if context.user_data is not None:
        context.user_data[SESSION_KEY] = 0
    view = await runtime(context).learning.queue.next_item(update.effective_user.id)
    text, markup = _render(view, 0)
    await update.effective_message.reply_text(text, reply_markup=markup)


async def queue_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Label / Skip / Undo / Stop: act, then show the next item in the same message."""
    query = update.callback_query
    action = parse_queue_data(query.data)
    settings = runtime(context).settings
    if action is None or query.message is None:
        await query.answer(texts.QUEUE_INVALID)
        return
    if not may_use(settings, "annotator", query.from_user.id):
        await query.answer(texts.ANNOTATORS_ONLY)
        return
    text, markup, answer = await _act(context, query.from_user.id, action)
    await query.answer(answer)
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # a double press racing to the same text
        if "not modified" not in exc.message.lower():
            raise


async def _act(
    context: ContextTypes.DEFAULT_TYPE, user_id: int, action: QueueAction
) -> tuple[str, InlineKeyboardMarkup | None, str | None]:
    """Apply one button press; returns the new message text, keyboard and callback answer."""
    queue, answers = runtime(context).learning.queue, texts.QUEUE_ANSWERS
    if action.kind == "stop":
        left = await queue.stop(user_id)
        return f"{texts.QUEUE_STOPPED}\n{texts.queue_progress(_session(context), left)}", None, None
    if action.kind == "undo":
        view = await queue.undo(user_id)
        if view is None:
            text, markup = _render(await queue.next_item(user_id), _session(context))
            return text, markup, texts.NOTHING_TO_UNDO
        text, markup = _render(view, _bump(context, -1))
        return text, markup, answers["undo"]
    if action.kind == "skip":
        text, markup = _render(await queue.skip(user_id, action.message_id), _session(context))
        return text, markup, answers["skip"]
    try:
        view = await queue.label(user_id, action.message_id, action.label)
    except LearningError as exc:
        text, markup = _render(await queue.next_item(user_id), _session(context))
        return text, markup, str(exc)[:190]
    text, markup = _render(view, _bump(context, +1))
    return text, markup, answers["label"].format(label=action.label)


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "label", label_command, "annotator")
    application.add_handler(CallbackQueryHandler(queue_button, pattern=QUEUE_PATTERN))
