"""Every user-visible string, in one place. Messages are sent with `parse_mode=HTML`.

Anything that came from a user (message text, names, arguments) goes through `esc()` before it is
put into a message, and `fit()` keeps every message under Telegram's 4,096-character limit.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for type hints: texts stays importable without the service's deps
    from bot.service import MoodReport, ScoreResult, StatusReport

MAX_MESSAGE = 4096
LABEL_EMOJI = {"negative": "😞", "neutral": "😐", "positive": "😊"}


def esc(text: object) -> str:
    """HTML-escape user-provided text for parse_mode=HTML."""
    return html.escape(str(text), quote=False)


def fit(text: str, limit: int = MAX_MESSAGE) -> str:
    """Cut `text` (already HTML) so it fits a Telegram message; never cuts inside an entity
    or a tag, and prefers a line end (our tags open and close on one line, so whole lines
    never leave a `<b>` without its `</b>`, which Telegram would refuse)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    newline = cut.rfind("\n")
    if newline >= limit // 2:
        return cut[:newline] + "\n…"
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi:  # don't leave half an `&amp;`
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:  # don't leave half a `<b>`
        cut = cut[:lt]
    return cut + "…"


def quote(user_text: str, limit: int = 300) -> str:
    """A user's text, shortened to `limit` characters and escaped, for echoing it back."""
    short = user_text if len(user_text) <= limit else user_text[: limit - 1] + "…"
    return esc(short)


def emoji(label: str) -> str:
    return LABEL_EMOJI.get(label, "🏷")


def percent(confidence: float) -> str:
    return f"{round(confidence * 100)}%"


def label_button(label: str) -> str:
    return f"{emoji(label)} {label}"


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


TEXT_ONLY = "I read text only: send me a text message and I'll score its sentiment."
GENERIC_ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
ADMINS_ONLY = "Sorry, that command is for admins only."
ANNOTATORS_ONLY = "Sorry, that command is for annotators only."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

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


# --- /status -------------------------------------------------------------------------------------
def _metric(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def status_text(report: StatusReport) -> str:
    """The admin /status text; extra sections (e.g. the learning loop's) are appended."""
    if report.model_version is None:
        lines = ["<b>Model:</b> none active"]
    else:
        m = report.metrics or {}
        lines = [
            f"<b>Model:</b> {esc(report.model_version)} ({esc(report.backbone or '?')})",
            f"Eval macro-F1 {_metric(m, 'macro_f1')} · accuracy {_metric(m, 'accuracy')}"
            + (f" · n={m['n']}" if isinstance(m.get("n"), int) else ""),
        ]
    lines += [
        "",
        f"<b>Messages:</b> {report.messages}",
        f"<b>Labels:</b> {report.labels} on {report.labelled_messages} message(s)",
        f"<b>Labels not yet trained on:</b> {report.untrained_labels}",
    ]
    for title, body in report.sections:
        lines += ["", f"<b>{esc(title)}</b>", *_lines(body)]
    return fit("\n".join(lines))


def _lines(body: Iterable[str] | str) -> list[str]:
    return [body] if isinstance(body, str) else list(body)


EXPORT_CAPTION = "Labelled messages: {rows} row(s)."
EXPORT_EMPTY = "There are no labelled messages to export yet."
