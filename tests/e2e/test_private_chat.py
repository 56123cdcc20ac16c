"""A private conversation end to end: text → scored reply with buttons → press → label stored →
change of mind; plus the edge cases users produce (stickers, edits, long text, forged buttons)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from storage.models import Label, Message, Prediction
from tests.e2e.conftest import ALICE, BOB

LABELS = ("negative", "neutral", "positive")
SCORE = re.compile(r"^(😞|😐|😊) (negative|neutral|positive) · (\d{1,3})%$")


async def _labels(bot) -> list[tuple[int, str, str]]:
    async with bot.runtime.sessionmaker() as session:
        rows = await session.execute(select(Label.user_id, Label.label, Label.source))
        return [tuple(r) for r in rows]


async def test_text_gets_label_confidence_and_one_button_per_label(bot):
    reply = await bot.say(ALICE, "I love this, it is great!")
    match = SCORE.match(reply.text)
    assert match, reply.text
    assert match.group(2) == "positive"  # the tiny model learned this very sentence
    assert 0 <= int(match.group(3)) <= 100
    assert len(reply.buttons) == 3
    for button, label in zip(reply.buttons, LABELS, strict=True):
        assert label in button["text"]
        assert len(button["callback_data"].encode()) <= 64
    async with bot.runtime.sessionmaker() as session:
        message = (await session.scalars(select(Message))).one()
        prediction = (await session.scalars(select(Prediction))).one()
    assert message.text == "I love this, it is great!"
    assert message.user_id == ALICE["id"] and message.chat_id == ALICE["id"]
    assert prediction.label == "positive"
    assert prediction.model_version == "v0001"


async def test_press_records_label_and_changing_it_replaces_it(bot):
    reply = await bot.say(ALICE, "What an awful day :(")
    predicted = SCORE.match(reply.text).group(2)

    query = bot.fake.press(reply, "negative", ALICE)
    answer = await bot.fake.answer_for(query)
    assert "negative" in answer["text"]
    await bot.fake.wait_for(lambda: "✓ you said: negative" in reply.text)
    assert reply.text.startswith(f"{SCORE.match(reply.text.splitlines()[0]).group(0)}")
    assert predicted in reply.text.splitlines()[0]
    assert len(reply.buttons) == 3  # kept, so Alice can change her mind
    assert await _labels(bot) == [(ALICE["id"], "negative", "inline")]

    query = bot.fake.press(reply, "neutral", ALICE)
    await bot.fake.answer_for(query)
    await bot.fake.wait_for(lambda: "✓ you said: neutral" in reply.text)
    assert await _labels(bot) == [(ALICE["id"], "neutral", "inline")]

    # Pressing the same label again: answered, nothing to edit, no error from Telegram.
    query = bot.fake.press(reply, "neutral", ALICE)
    assert "neutral" in (await bot.fake.answer_for(query))["text"]
    assert await _labels(bot) == [(ALICE["id"], "neutral", "inline")]


async def test_forged_and_stale_callbacks_get_a_polite_answer(bot):
    reply = await bot.say(ALICE, "The meeting is at 3pm tomorrow.")
    message_id = int(reply.buttons[0]["callback_data"].split(":")[1])
    forged = [
        "fb:abc:positive",  # malformed
        f"fb:{message_id}:ecstatic",  # not a label
        "fb:999999:positive",  # no such message (stale)
        "garbage",  # no handler matches: nothing happens, and nothing crashes
        "fb:" + "9" * 40 + ":positive",
    ]
    queries = [bot.fake.callback(reply, data, ALICE) for data in forged]
    for query in queries[:3]:
        answer = await bot.fake.answer_for(query)
        assert answer.get("text") and "sorry" in answer["text"].lower()
    # Bob's chat can't label Alice's message with a button copied from hers.
    bob_reply = await bot.say(BOB, "hello there")
    query = bot.fake.callback(bob_reply, f"fb:{message_id}:positive", BOB)
    assert "sorry" in (await bot.fake.answer_for(query))["text"].lower()
    await bot.fake.quiet()
    assert await _labels(bot) == []
    assert reply.edits == []


async def test_sticker_gets_text_only_answer_and_nothing_is_stored(bot):
    bot.fake.send_sticker(bot.private(ALICE), ALICE)
    reply = await bot.fake.next_from_bot(ALICE["id"])
    assert "I read text only" in reply.text
    async with bot.runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_long_message_is_scored_and_reply_stays_short(bot):
    text = ("This is great <b>&amp; fun</b> " * 400)[:10_000]
    reply = await bot.say(ALICE, text)
    assert SCORE.match(reply.text)
    async with bot.runtime.sessionmaker() as session:
        stored = (await session.scalars(select(Message.text))).one()
    assert stored == text


async def test_edited_message_is_rescored(bot):
    original = bot.fake.user_says(bot.private(ALICE), ALICE, "The store opens at nine")
    await bot.fake.next_from_bot(ALICE["id"])
    bot.fake.edit(original, "I hate this, it is terrible.")
    reply = await bot.fake.next_from_bot(ALICE["id"])
    assert "negative" in reply.text and "edit" in reply.text.lower()
    async with bot.runtime.sessionmaker() as session:
        texts = list(await session.scalars(select(Message.text)))
        predictions = list(await session.scalars(select(Prediction.label).order_by(Prediction.id)))
    assert texts == ["I hate this, it is terrible."]
    assert len(predictions) == 2 and predictions[-1] == "negative"


async def test_an_edited_command_does_not_run_again(bot):
    original = bot.fake.user_says(bot.private(ALICE), ALICE, "/forget")
    ask = await bot.fake.next_from_bot(ALICE["id"])
    assert len(ask.buttons) == 2
    bot.fake.edit(original, "/forget")
    await bot.fake.quiet()
    assert len(bot.fake.messages(ALICE["id"])) == 1  # no second confirmation


async def test_help_lists_only_commands_this_person_may_use(bot):
    reply = await bot.say(ALICE, "/help")
    assert "/mood" in reply.text and "/forget" in reply.text
    assert "/status" not in reply.text and "/export" not in reply.text
    assert "store" in reply.text.lower()
    reply = await bot.say(ALICE, "/start")
    assert "sentibot" in reply.text


async def test_unknown_command_points_to_help(bot):
    reply = await bot.say(ALICE, "/frobnicate")
    assert "/help" in reply.text


async def test_error_in_a_handler_is_logged_and_the_user_told(bot):
    bot.expect_errors = True
    bot.fake.fail_next("sendMessage", "Bad Request: something broke")
    reply = await bot.say(ALICE, "hello")
    assert "something went wrong" in reply.text
    assert any("error while handling an update" in r.getMessage() for r in bot.errors)


async def test_blocked_by_the_user_is_not_an_error(bot):
    bot.fake.fail_next("sendMessage", "Forbidden: bot was blocked by the user", 403)
    bot.fake.user_says(bot.private(ALICE), ALICE, "hello")
    await bot.fake.quiet()
    assert bot.fake.messages(ALICE["id"]) == []  # no "something went wrong" either
    async with bot.runtime.sessionmaker() as session:  # the message was still stored
        assert await session.scalar(select(func.count()).select_from(Message)) == 1
