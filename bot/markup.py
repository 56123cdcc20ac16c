"""Telegram HTML (`parse_mode=HTML`): escaping user text, quoting it back, and the length limit."""

from __future__ import annotations

import html

MAX_MESSAGE = 4096


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
