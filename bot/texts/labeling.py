"""The /label queue: its buttons, answers and the item card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.markup import esc, fit, quote
from bot.texts.common import percent

if TYPE_CHECKING:  # only for type hints: texts imports nothing of the bot at run time
    from bot.learning import results


# --- the /label queue ----------------------------------------------------------------------------
LABEL_PRIVATE_ONLY = "Labeling happens in a private chat with me: send /label there."
QUEUE_EMPTY = "🎉 The queue is empty: nothing left to label."
QUEUE_STOPPED = "Stopped. Thanks for labeling!"
QUEUE_INVALID = "Sorry, that button doesn't work any more. Send /label to continue."
QUEUE_BUTTONS = {"skip": "⏭ Skip", "undo": "↩️ Undo", "stop": "⏹ Stop"}
QUEUE_ANSWERS = {"undo": "Undone", "skip": "Skipped", "label": "Noted: {label}"}
NOTHING_TO_UNDO = "Nothing to undo."
# The learning loop refuses these labels with a `LearningError` (plain text).
OPTED_OUT = "you asked me to forget you, so I don't store your labels; /start to opt back in"
UNKNOWN_LABEL = "unknown label {label!r}"
MESSAGE_GONE = "that message is gone (deleted or forgotten)"
NOT_OFFERED = "the queue did not offer you that message; send /label for your next one"
QUEUE_PAUSED = "An admin has paused your labels for now, so there is nothing to label."
QUEUE_PAUSED_SHORT = "an admin has paused your labels"


def queue_progress(done: int, left: int) -> str:
    return f"Labelled this session: {done} · left in the queue: {left}"


def queue_item(view: results.QueueView, done: int) -> str:
    """The /label message for one item (the text is HTML-escaped and shortened)."""
    item = view.item
    guess = ""
    if item.predicted_label is not None and item.confidence is not None:
        guess = f"\n<i>Model's guess: {esc(item.predicted_label)} · {percent(item.confidence)}</i>"
    body = f"<b>How does this message sound?</b>\n\n{quote(item.text, 1500)}{guess}"
    return fit(f"{body}\n\n{queue_progress(done, view.remaining)}")
