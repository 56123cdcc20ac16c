"""Groups (silent and reply mode, /mood with its chart), /forget, and the admin-only commands."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from storage.models import Label, Message, Prediction, User
from tests.e2e.conftest import ADMIN, ALICE, BOB, GROUP, eventually
from tests.e2e.fake_telegram import FakeTelegram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def _is(expected: int, count) -> bool:
    return await count == expected


async def _count(bot, table, *where) -> int:
    async with bot.runtime.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where))


async def test_group_silent_mode_stores_everything_posts_nothing_and_mood_has_a_chart(bot):
    lines = [
        (ALICE, "I love this, it is great!"),
        (BOB, "Horrible service, never again"),
        (ALICE, "What a wonderful day :)"),
        (BOB, "The report has ten pages"),
    ]
    for user, text in lines:
        bot.fake.user_says(GROUP, user, text)
    await eventually(lambda: _is(4, _count(bot, Message, Message.chat_id == GROUP["id"])))
    await bot.fake.quiet()
    assert bot.fake.messages(GROUP["id"]) == []

    bot.fake.user_says(GROUP, BOB, "/mood")
    text = await bot.fake.next_from_bot(GROUP["id"])
    photo = await bot.fake.next_from_bot(GROUP["id"])
    assert "4 message(s)" in text.text
    for label in ("negative", "neutral", "positive"):
        assert label in text.text
    assert "%" in text.text
    assert photo.method == "sendPhoto" and photo.file_bytes.startswith(PNG_MAGIC)
    assert await _count(bot, Message, Message.chat_id == GROUP["id"]) == 4  # /mood isn't scored


async def test_mood_windows_and_bad_argument(bot):
    bot.fake.user_says(GROUP, ALICE, "Fantastic news, congratulations!")
    bot.fake.user_says(GROUP, ALICE, "/mood 7d")
    reply = await bot.fake.next_from_bot(GROUP["id"])
    assert "last 7 days" in reply.text and "1 message(s)" in reply.text
    assert "positive: 1 (100%)" in reply.text
    await bot.fake.next_from_bot(GROUP["id"])  # the chart
    bot.fake.user_says(GROUP, ALICE, "/mood yesterday")
    assert "Usage" in (await bot.fake.next_from_bot(GROUP["id"])).text
    reply = await bot.say(BOB, "/mood 24h")  # Bob's private chat has no messages yet
    assert "No scored messages" in reply.text


async def test_group_reply_mode_answers_like_private(start_bot):
    async with start_bot(group_mode="reply") as bot:
        bot.fake.user_says(GROUP, ALICE, "Terrible food, rude staff")
        reply = await bot.fake.next_from_bot(GROUP["id"])
        assert "negative" in reply.text and len(reply.buttons) == 3
        bot.fake.press(reply, "neutral", BOB)  # another member corrects it
        await bot.fake.wait_for(lambda: "Bob said: neutral" in reply.text)
        async with bot.runtime.sessionmaker() as session:
            rows = (await session.execute(select(Label.user_id, Label.label))).all()
        assert [tuple(r) for r in rows] == [(BOB["id"], "neutral")]


async def test_forget_asks_then_deletes_everything_and_stops_storing(bot):
    first = await bot.say(ALICE, "I am so angry and upset")
    bot.fake.press(first, "negative", ALICE)
    await bot.fake.wait_for(lambda: "you said" in first.text)
    bot.fake.user_says(GROUP, ALICE, "Best movie ever, loved it 😍")
    await eventually(lambda: _is(2, _count(bot, Message, Message.user_id == ALICE["id"])))

    ask = await bot.say(ALICE, "/forget")
    assert len(ask.buttons) == 2
    assert await _count(bot, Message, Message.user_id == ALICE["id"]) == 2  # nothing yet
    # Only Alice can confirm her /forget.
    query = bot.fake.press(ask, "Yes", BOB)
    assert "only the person" in (await bot.fake.answer_for(query))["text"].lower()
    bot.fake.press(ask, "Yes", ALICE)
    await bot.fake.wait_for(lambda: "deleted 2 message(s) and 1 label(s)" in ask.text)
    assert await _count(bot, Message, Message.user_id == ALICE["id"]) == 0
    assert await _count(bot, Label) == 0
    assert await _count(bot, Prediction) == 0

    # Opted out: still answered in private, but nothing stored and no buttons.
    reply = await bot.say(ALICE, "Still here")
    assert "Not stored" in reply.text and reply.buttons == []
    bot.fake.user_says(GROUP, ALICE, "group message while opted out")
    await bot.fake.quiet()
    assert await _count(bot, Message) == 0
    # The old button: she opted out, so the answer says how to opt back in.
    query = bot.fake.press(first, "positive", ALICE)
    assert "/start" in (await bot.fake.answer_for(query))["text"]

    # /start opts back in.
    reply = await bot.say(ALICE, "/start")
    assert "Welcome back" in reply.text
    reply = await bot.say(ALICE, "I like it a lot, good stuff")
    assert len(reply.buttons) == 3
    async with bot.runtime.sessionmaker() as session:
        user = await session.get(User, ALICE["id"])
    assert user is not None and not user.opted_out


async def test_forget_cancel_keeps_data(bot):
    await bot.say(ALICE, "The office is on the second floor")
    ask = await bot.say(ALICE, "/forget")
    bot.fake.press(ask, "No", ALICE)
    await bot.fake.wait_for(lambda: "nothing was deleted" in ask.text)
    assert await _count(bot, Message) == 1


async def test_status_and_export_are_admin_only(bot):
    reply = await bot.say(ALICE, "Great job team, really happy with it")
    bot.fake.press(reply, "positive", ALICE)
    await bot.fake.wait_for(lambda: "you said" in reply.text)

    for command in ("/status", "/export"):
        denied = await bot.say(ALICE, command)
        assert denied.text == "Sorry, that command is for admins only."
        denied = await bot.say(BOB, command, chat=GROUP)
        assert "admins only" in denied.text

    status = await bot.say(ADMIN, "/status")
    assert "v0001" in status.text and "macro-F1" in status.text
    assert "Messages:</b> 1" in status.raw_text and "Labels:</b> 1" in status.raw_text
    assert "not yet trained on:</b> 1" in status.raw_text

    bot.fake.user_says(bot.private(ADMIN), ADMIN, "/export")
    document = await bot.fake.next_from_bot(ADMIN["id"])
    assert document.method == "sendDocument" and document.file_name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(document.file_bytes.decode("utf-8-sig"))))
    assert [(r["text"], r["label"]) for r in rows] == [
        ("Great job team, really happy with it", "positive")
    ]
    help_text = (await bot.say(ADMIN, "/help")).text
    assert "/status" in help_text and "/export" in help_text


async def test_export_is_never_posted_in_a_group(bot):
    reply = await bot.say(ALICE, "A private thought, please keep it")
    bot.fake.press(reply, "neutral", ALICE)
    await bot.fake.wait_for(lambda: "you said" in reply.text)
    answer = await bot.say(ADMIN, "/export", chat=GROUP)
    assert answer.method == "sendMessage" and "private chat" in answer.text
    await bot.fake.quiet()
    assert [m.method for m in bot.fake.messages(GROUP["id"])] == ["sendMessage"]


async def test_command_menus_are_set_per_role(bot):
    default = bot.fake.commands['{"type": "default"}']
    names = {c["command"] for c in default}
    assert {"start", "help", "mood", "forget"} <= names and "status" not in names
    admin_scope = f'{{"chat_id": {ADMIN["id"]}, "type": "chat"}}'
    assert "status" in {c["command"] for c in bot.fake.commands[admin_scope]}


async def test_user_names_echoed_back_are_html_escaped(start_bot):
    eve = FakeTelegram.user(1003, "<i>Eve</i> & Co")
    async with start_bot(group_mode="reply") as bot:
        bot.fake.user_says(GROUP, eve, "<b>not bold</b> & fine")
        reply = await bot.fake.next_from_bot(GROUP["id"])
        bot.fake.press(reply, "positive", eve)
        # The fake parses HTML like Telegram: unescaped markup would fail or be swallowed.
        await bot.fake.wait_for(lambda: "<i>Eve</i> & Co said: positive" in reply.text)


async def test_no_admins_configured_means_nobody_is_admin(start_bot):
    async with start_bot(admin_ids=[]) as bot:
        assert "admins only" in (await bot.say(ADMIN, "/status")).text
