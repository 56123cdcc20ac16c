"""Inline keyboards and their callback data, built and parsed in one place.

Callback data is at most 64 bytes (Telegram's limit). Formats:
- `fb:<message_id>:<label>`: feedback on a scored message (`message_id` = `messages.id`);
- `forget:yes:<user_id>` / `forget:no:<user_id>`: the /forget confirmation (only the person who
  asked may confirm it, also in groups).
Anything else (forged, from an older version of the bot, truncated) parses to None and gets a
polite callback answer instead of an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from classifier.data import LABEL_NAME

FEEDBACK_PATTERN = r"^fb:"
FORGET_PATTERN = r"^forget:"
_FORGET = re.compile(r"^forget:(yes|no):(\d{1,18})$")
_FEEDBACK = re.compile(rf"^fb:(\d{{1,18}}):({LABEL_NAME})$")
MAX_CALLBACK_BYTES = 64


@dataclass(frozen=True, slots=True)
class Feedback:
    """A parsed feedback button press (the label is checked against the model's labels later)."""

    message_id: int
    label: str


def feedback_data(message_id: int, label: str) -> str:
    data = f"fb:{message_id}:{label}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data too long for label {label!r}")
    return data


def parse_feedback(data: str | None) -> Feedback | None:
    """`fb:<message_id>:<label>` → Feedback, or None when the data is malformed."""
    match = _FEEDBACK.match(data or "")
    if match is None:
        return None
    return Feedback(int(match.group(1)), match.group(2))


def feedback_keyboard(message_id: int, labels: list[str]) -> InlineKeyboardMarkup:
    """One button per label, in one row; each button's text contains its label word."""
    row = [
        InlineKeyboardButton(
            texts.label_button(label), callback_data=feedback_data(message_id, label)
        )
        for label in labels
    ]
    return InlineKeyboardMarkup([row])


@dataclass(frozen=True, slots=True)
class ForgetChoice:
    confirmed: bool
    user_id: int  # the person who asked


def forget_keyboard(user_id: int) -> InlineKeyboardMarkup:
    yes = InlineKeyboardButton(texts.FORGET_YES, callback_data=f"forget:yes:{user_id}")
    no = InlineKeyboardButton(texts.FORGET_NO, callback_data=f"forget:no:{user_id}")
    return InlineKeyboardMarkup([[yes, no]])


def parse_forget(data: str | None) -> ForgetChoice | None:
    """`forget:yes:<id>` / `forget:no:<id>` → ForgetChoice, anything else → None."""
    match = _FORGET.match(data or "")
    if match is None:
        return None
    return ForgetChoice(match.group(1) == "yes", int(match.group(2)))
