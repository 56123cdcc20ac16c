"""Many chats at once: every message answered and stored, each chat's replies in order."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from telegram.ext import AIORateLimiter

from storage.models import Message, Prediction
from tests.e2e.conftest import eventually
from tests.e2e.fake_telegram import FakeTelegram

CHATS, PER_CHAT = 20, 10


async def test_bot_uses_ptb_rate_limiter_by_default(bot):
    assert isinstance(bot.application.bot.rate_limiter, AIORateLimiter)


@pytest.mark.slow
async def test_twenty_chats_ten_messages_each_at_once(start_bot):
    # The rate limiter would hold 200 replies to Telegram's 30 messages/s; it is PTB's own and
    # checked above, so this test runs without it to stay fast.
    async with start_bot(rate_limit=False) as bot:
        users = [FakeTelegram.user(5000 + i, f"User{i}") for i in range(CHATS)]
        for n in range(PER_CHAT):
            for user in users:
                bot.fake.user_says(
                    FakeTelegram.private_chat(user), user, f"message {n} from {user['id']}"
                )

        await bot.fake.wait_for(lambda: len(bot.fake.sent) >= CHATS * PER_CHAT, timeout=60)
        assert len(bot.fake.sent) == CHATS * PER_CHAT

        async def stored() -> int:
            async with bot.runtime.sessionmaker() as session:
                return await session.scalar(select(func.count()).select_from(Message))

        assert await eventually(lambda: _equals(stored(), CHATS * PER_CHAT))
        async with bot.runtime.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Prediction)) == 200
            by_id = dict((await session.execute(select(Message.id, Message.text))).all())
        for user in users:
            replies = bot.fake.messages(user["id"])
            assert len(replies) == PER_CHAT
            # Each reply's buttons point at the message it answers: same order as sent.
            answered = [by_id[int(r.buttons[0]["callback_data"].split(":")[1])] for r in replies]
            assert answered == [f"message {n} from {user['id']}" for n in range(PER_CHAT)]


async def _equals(value, expected: int) -> bool:
    return await value == expected
