"""Labels you can trust: the annotator list, the "looks unreliable" flag, /annotator, /review,
and the learning curve (in /status and retrain reports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.markup import esc, fit, quote

if TYPE_CHECKING:  # only for type hints: texts imports nothing of the bot at run time
    from bot.learning.annotators import AnnotatorList, AnnotatorRow
    from bot.learning.review import ReviewView

Names = dict[int, tuple[str | None, str | None]]

# --- who ------------------------------------------------------------------------------------------
SOURCE_NAMES = {"inline": "inline buttons", "import": "imports", "model": "the model (weak voter)"}


def source_name(source: str, names: Names, *, private: bool = True, number: int = 0) -> str:
    """A label source in words: @username, else the first name (with the id in private chats
    only: groups never see Telegram ids), else the id (private) or "annotator #n" (groups)."""
    if source in SOURCE_NAMES:
        return SOURCE_NAMES[source]
    uid = int(source) if source.lstrip("-").isdigit() else None
    username, first_name = names.get(uid, (None, None)) if uid is not None else (None, None)
    if username:
        return f"@{username}"
    if first_name:
        return f"{first_name} ({uid})" if private else first_name
    return source if private else f"annotator #{number}"


# --- the annotator list ---------------------------------------------------------------------------
def alpha_words(alpha: float | None) -> str:
    """Krippendorff's own reading: ≥ 0.8 reliable, 0.667–0.8 tentative, below that low."""
    if alpha is None:
        return "undefined"
    if alpha < 0.667:
        return "low"
    return "tentative" if alpha < 0.8 else "reliable"


def annotator_row(row: AnnotatorRow, names: Names, *, private: bool, number: int) -> str:
    who = source_name(row.source, names, private=private, number=number)
    if row.source == "inline" and row.people > 1:
        who += f" ({row.people} people)"
    parts = [f"{who}: {row.labels} labels"]
    if row.reliability is not None:
        parts.append(f"reliability {row.reliability:.2f}")
    if row.agreement is not None:
        parts.append(f"agrees with others on {row.agreement:.0%} of {row.shared} shared labels")
    if row.excluded:
        parts.append("EXCLUDED")
    elif row.flagged:
        parts.append("⚠️ flagged")
    return " · ".join(parts)


def annotator_list_lines(listing: AnnotatorList, *, private: bool = True) -> list[str]:
    """Every source with its reliability and agreement, then Krippendorff's alpha (plain)."""
    lines = ["label sources (labels · reliability · agreement with others):"]
    for number, row in enumerate(listing.rows, 1):
        lines.append("  " + annotator_row(row, listing.names, private=private, number=number))
    alpha = listing.alpha
    if alpha.items:
        value = "n/a" if alpha.value is None else f"{alpha.value:.2f}"
        lines.append(
            f"Krippendorff's α {value} ({alpha_words(alpha.value)}) on {alpha.items} "
            "messages with 2 or more labels"
        )
    return lines


def annotators_text(listing: AnnotatorList, *, private: bool = True) -> str:
    """/annotator without arguments (HTML)."""
    if not listing.rows:
        return "No labels yet."
    return fit("\n".join(esc(line) for line in annotator_list_lines(listing, private=private)))


def flag_text(source: str, reliability: float, names: Names) -> str:
    """To every admin, once per source (HTML)."""
    who = esc(source_name(source, names))
    target = esc(source)
    return (
        f"⚠️ <b>The labels of {who} look unreliable</b>: reliability {reliability:.2f}, far "
        "below the others'. They already count for little in training; "
        f"/annotator exclude {target} stops them counting at all (/annotator include undoes it)."
    )


ANNOTATOR_USAGE = (
    "Usage: /annotator (the list), /annotator exclude &lt;id|@username|inline|import&gt;, "
    "/annotator include &lt;id|@username|inline|import&gt;."
)
ANNOTATOR_UNKNOWN = (
    "I don't know {name}: give a Telegram id, an @username I have seen, inline or import."
)
ANNOTATOR_EXCLUDED = (
    "Excluded {who}: their labels no longer count (/annotator include {target} undoes it)."
)
ANNOTATOR_INCLUDED = "Included {who} again: their labels count again."
ANNOTATOR_UNCHANGED = "Nothing changed: {who} was already {state}."


# --- /review --------------------------------------------------------------------------------------
REVIEW_PRIVATE_ONLY = (
    "Reviews show messages from every chat: send /review in a private chat with me."
)
REVIEW_EMPTY = "✅ No labels waiting for review."
REVIEW_STOPPED = "Stopped reviewing."
REVIEW_BUTTONS = {"keep": "✅ Keep {label}", "change": "✏️ {label}", "skip": "⏭ Skip"}
REVIEW_ANSWERS = {"kept": "Kept", "changed": "Changed to {label}", "skip": "Skipped"}
REVIEW_GONE = "Someone settled that one already."


def review_item(view: ReviewView) -> str:
    """The /review message for one suspicious label (HTML; the text is escaped)."""
    item = view.item
    return fit(
        f"<b>Is this label right?</b>\n\n{quote(item.text, 1500)}\n\n"
        f"Labelled <b>{esc(item.given_label)}</b>; the data suggest "
        f"<b>{esc(item.suggested_label)}</b> (the model gives the label "
        f"{item.score:.0%} when it has not seen it).\n"
        f"Waiting for review: {view.left}"
    )


# --- the learning curve ---------------------------------------------------------------------------
CURVE_TITLE = "Learning curve (same eval rows)"
CURVE_CAPTION = "Macro-F1 with 25 / 50 / 75 / 100% of your labels"


def curve_line(curve: dict[str, Any] | None) -> str | None:
    """ "Would more labels help? rising (…)" in one plain line; None without a curve."""
    if not curve or not curve.get("points"):
        return None
    points = curve["points"]
    f1s = " → ".join(f"{p['macro_f1']:.3f}" for p in points)
    shares = "/".join(f"{round(100 * p['fraction'])}" for p in points)
    labels = points[-1]["labels"]
    verdict = curve["verdict"]
    return f"would more labels help? {verdict} (macro-F1 {f1s} at {shares}% of {labels} labels)"


def review_line(pending: int) -> str | None:
    return f"labels waiting for /review: {pending}" if pending else None
