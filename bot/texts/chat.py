"""What everyone sees: the scored reply and its buttons, /start and /help, /forget, /mood."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.markup import esc, fit
from bot.texts.common import emoji, percent

if TYPE_CHECKING:  # only for type hints: texts imports nothing of the bot at run time
    from bot.service import MoodReport, ScoreResult


# --- scoring and feedback ------------------------------------------------------------------------
def score_line(label: str, confidence: float) -> str:
    """`😊 positive · 87%`"""
    return f"{emoji(label)} {esc(label)} · {percent(confidence)}"


def score_reply(result: ScoreResult) -> str:
    text = score_line(result.label, result.confidence)
    if not result.stored:
        text += "\n<i>Not stored: you asked me to forget you. /start lets me remember again.</i>"
    return text


def feedback_done(label: str, confidence: float, chosen: str, who: str | None = None) -> str:
    """The scored reply after someone pressed a label button (`✓ you said: negative`)."""
    name = "you" if who is None else esc(who)
    return f"{score_line(label, confidence)}\n✓ {name} said: {esc(chosen)}"


EDITED_PREFIX = "✏️ Re-scored your edit: "
FEEDBACK_INVALID = "Sorry, that button doesn't work. Send me a new message to score."
FEEDBACK_ANSWERS = {
    "ok": "Thanks, noted: {label}",
    "unchanged": "Already noted: {label}",
    "not_found": "Sorry, I can't find that message any more (it may have been forgotten).",
    "wrong_chat": FEEDBACK_INVALID,
    "unknown_label": "Sorry, that label isn't one I use any more. Send the message again?",
    "opted_out": "You asked me to forget you, so I don't store labels. /start to opt back in.",
}


def feedback_answer(outcome: str, label: str | None) -> str:
    """The short callback answer (≤ 200 characters) after a feedback button press."""
    return FEEDBACK_ANSWERS.get(outcome, FEEDBACK_INVALID).format(label=label or "")


# --- /start and /help ----------------------------------------------------------------------------
INTRO = (
    "Hi! I'm <b>sentibot</b>. Send me a message and I'll tell you whether it sounds "
    "<b>negative</b>, <b>neutral</b> or <b>positive</b>, and how sure I am. If I got it wrong, "
    "tap the right label under my reply: I learn from those corrections.\n"
    "In groups I score every text message quietly; /mood shows the chat's mood."
)
STORAGE_NOTE = (
    "<b>What I store:</b> the text of messages I score, your Telegram id, username and first "
    "name, the chat, my predictions and the labels you give. /forget deletes all of it; after "
    "that I keep only a note that you opted out and store nothing more from you (I still answer "
    "in private chats) until you send /start again."
)
OPTED_BACK_IN = "Welcome back: I'll store your messages and labels again."


def help_text(commands: Sequence[tuple[str, str]], *, opted_back_in: bool = False) -> str:
    """The /start and /help text, listing the commands this person may use."""
    lines = [INTRO, "", STORAGE_NOTE, "", "<b>Commands:</b>"]
    lines += [f"/{name} – {esc(description)}" for name, description in commands]
    if opted_back_in:
        lines = [OPTED_BACK_IN, ""] + lines
    return fit("\n".join(lines))


# --- /forget -------------------------------------------------------------------------------------
FORGET_ASK = (
    "This deletes every message, prediction and label of yours that I have stored, in every chat, "
    "and I stop storing anything from you until you send /start. Delete everything?"
)
FORGET_YES = "Yes, delete everything"
FORGET_NO = "No, keep it"
FORGET_CANCELLED = "OK, nothing was deleted."
FORGET_NOT_YOURS = "Only the person who asked can confirm this."


def forget_done(messages: int, labels: int) -> str:
    return (
        f"Done: I deleted {messages} message(s) and {labels} label(s) of yours. "
        "I won't store anything from you until you send /start again."
    )


# --- /mood ---------------------------------------------------------------------------------------
MOOD_USAGE = "Usage: /mood, /mood 24h or /mood 7d"
WINDOW_NAMES = {"all": "all time", "24h": "last 24 hours", "7d": "last 7 days"}


def mood_text(report: MoodReport) -> str:
    window = WINDOW_NAMES.get(report.window, report.window)
    if report.total == 0:
        return f"No scored messages in this chat ({window}) yet."
    lines = [f"<b>Mood in this chat</b> ({window}): {report.total} message(s)"]
    for label, count in report.counts.items():
        share = count / report.total
        lines.append(f"{emoji(label)} {esc(label)}: {count} ({percent(share)})")
    return "\n".join(lines)


def mood_caption(report: MoodReport) -> str:
    return f"Mood ({WINDOW_NAMES.get(report.window, report.window)})"
