"""/review (annotators and admins, private chats) and /annotator (admins).

/review walks the labels the data contradict, most suspicious first, in one message edited as
answers come: Keep (the label stands), one "change to" button per other label, Skip, Stop.
Callback data (parsed only in `parse_review_data`, at most 64 bytes): `rv:k:<message_id>` keep,
`rv:c:<message_id>:<label>` change, `rv:s:<message_id>` skip, `rv:x` stop.

/annotator lists the label sources (reliability, agreement); `/annotator exclude <who>` and
`/annotator include <who>` take a Telegram id, an @username, `inline` or `import` (audited).
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
from bot.learning.review import ReviewView
from classifier.data import LABEL_NAME

REVIEW_PATTERN = r"^rv:"
_DATA = re.compile(rf"^rv:(?:(k|s):(\d{{1,18}})|(c):(\d{{1,18}}):({LABEL_NAME})|(x))$")
SKIPS_KEY = "review_skips"  # context.user_data: reviews skipped in this session


@dataclass(frozen=True, slots=True)
class ReviewAction:
    kind: str  # keep | change | skip | stop
    message_id: int | None = None
    label: str | None = None


def parse_review_data(data: str | None) -> ReviewAction | None:
    """Callback data → ReviewAction, or None when forged, truncated or from an old version."""
    match = _DATA.match(data or "")
    if match is None:
        return None
    if match.group(1):
        return ReviewAction("keep" if match.group(1) == "k" else "skip", int(match.group(2)))
    if match.group(3):
        return ReviewAction("change", int(match.group(4)), match.group(5))
    return ReviewAction("stop")


def review_keyboard(view: ReviewView) -> InlineKeyboardMarkup:
    item, names = view.item, texts.REVIEW_BUTTONS
    mid = item.message_id
    keep = InlineKeyboardButton(
        names["keep"].format(label=item.given_label), callback_data=f"rv:k:{mid}"
    )
    change = [
        InlineKeyboardButton(
            names["change"].format(label=label), callback_data=f"rv:c:{mid}:{label}"
        )
        for label in view.labels
        if label != item.given_label
    ]
    controls = [
        InlineKeyboardButton(names["skip"], callback_data=f"rv:s:{mid}"),
        InlineKeyboardButton(texts.QUEUE_BUTTONS["stop"], callback_data="rv:x"),
    ]
    return InlineKeyboardMarkup([[keep], change, controls])


def _skips(context: ContextTypes.DEFAULT_TYPE) -> set[int]:
    if context.user_data is None:
        return set()
    return context.user_data.setdefault(SKIPS_KEY, set())


def _render(view: ReviewView) -> tuple[str, InlineKeyboardMarkup | None]:
    if view.item is None:
        return texts.REVIEW_EMPTY, None
    return texts.review_item(view), review_keyboard(view)


async def review_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a review session: the most suspicious label first."""
    if not is_private(update):
        await update.effective_message.reply_text(texts.REVIEW_PRIVATE_ONLY)
        return
    if context.user_data is not None:
        context.user_data[SKIPS_KEY] = set()
    text, markup = _render(await runtime(context).learning.reviews.next())
    await update.effective_message.reply_text(text, reply_markup=markup)


async def review_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep / Change to … / Skip / Stop: act, then show the next one in the same message."""
    query = update.callback_query
    action = parse_review_data(query.data)
    if action is None or query.message is None:
        await query.answer(texts.QUEUE_INVALID)
        return
    if not may_use(runtime(context).settings, "annotator", query.from_user.id):
        await query.answer(texts.ANNOTATORS_ONLY)
        return
    reviews, answers = runtime(context).learning.reviews, texts.REVIEW_ANSWERS
    answer, who = None, query.from_user.id
    if action.kind == "stop":
        await query.answer()
        await _edit(query, texts.REVIEW_STOPPED, None)
        return
    if action.kind == "skip":
        _skips(context).add(action.message_id)
        await reviews.skip(who, action.message_id)
        answer = answers["skip"]
    else:
        done = await reviews.decide(who, action.message_id, action.label)
        label = action.label or ""
        answer = answers["kept" if action.kind == "keep" else "changed"].format(label=label)
        answer = answer if done else texts.REVIEW_GONE
    await query.answer(answer)
    await _edit(query, *_render(await reviews.next(_skips(context))))


async def _edit(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # a double press racing to the same text
        if "not modified" not in exc.message.lower():
            raise


async def annotator_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/annotator: the list; /annotator exclude|include <who> (admins, audited)."""
    args, message = context.args or [], update.effective_message
    learning = runtime(context).learning
    private = is_private(update)
    if not args:
        await message.reply_text(
            texts.annotators_text(await learning.annotator_list(), private=private)
        )
        return
    if len(args) != 2 or args[0].lower() not in ("exclude", "include"):
        await message.reply_text(texts.ANNOTATOR_USAGE)
        return
    source = await learning.desk.find_source(args[1])
    if source is None:
        await message.reply_text(texts.esc(texts.ANNOTATOR_UNKNOWN.format(name=args[1])))
        return
    exclude = args[0].lower() == "exclude"
    listing = await learning.desk.named(await learning.annotator_list())
    who = texts.source_name(source, listing.names, private=private)
    if not await learning.desk.set_excluded(source, exclude, update.effective_user.id):
        state = "excluded" if exclude else "included"
        await message.reply_text(texts.esc(texts.ANNOTATOR_UNCHANGED.format(who=who, state=state)))
        return
    done = texts.ANNOTATOR_EXCLUDED if exclude else texts.ANNOTATOR_INCLUDED
    await message.reply_text(texts.esc(done.format(who=who, target=args[1])))


def register(application: Application, settings: Settings) -> None:
    add_command(application, settings, "review", review_command, "annotator")
    add_command(application, settings, "annotator", annotator_command, "admin")
    application.add_handler(CallbackQueryHandler(review_button, pattern=REVIEW_PATTERN))
