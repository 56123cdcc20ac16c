"""Recording scored messages: upserts, edits, opt-out, crash safety."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.models import Chat, Message, Prediction, User
from tests.storage.conftest import record


async def test_record_scored_message_writes_user_chat_message_prediction(sm):
    async with sm.begin() as s:
        rec = await record(s, chat_id=-5, user_id=42, tg_id=7, text="great day")
    async with sm() as s:
        msg = await repo.get_message(s, rec.message_id)
        assert (msg.chat_id, msg.user_id, msg.telegram_message_id, msg.text) == (
            -5,
            42,
            7,
            "great day",
        )
        assert (await s.get(User, 42)).username == "user42"
        assert (await s.get(Chat, -5)).type == "group"
        pred = await repo.latest_prediction(s, rec.message_id)
        assert pred.id == rec.prediction_id
        assert (pred.model_version, pred.label) == ("v0001", "positive")
        assert pred.confidence == pytest.approx(0.7)
        assert pred.probs == pytest.approx({"negative": 0.1, "neutral": 0.2, "positive": 0.7})
        assert pred.margin == pytest.approx(0.5)
        assert rec.edited is False


async def test_edit_updates_text_and_adds_prediction(sm):
    async with sm.begin() as s:
        first = await record(s, tg_id=9, text="before")
    async with sm.begin() as s:
        await repo.set_label(s, first.message_id, 11, "positive", source="inline")
    async with sm.begin() as s:
        second = await record(
            s, tg_id=9, text="after", probs={"negative": 0.8, "neutral": 0.1, "positive": 0.1}
        )
    assert second.message_id == first.message_id and second.edited is True
    async with sm() as s:
        msg = await repo.get_message(s, first.message_id)
        assert msg.text == "after" and msg.edited_at is not None
        n = await s.scalar(select(func.count()).select_from(Prediction))
        assert n == 2
        assert (await repo.latest_prediction(s, first.message_id)).label == "negative"
        assert await repo.resolved_label(s, first.message_id) == "positive"  # labels survive
        assert await repo.find_message(s, -100, 9) is not None


async def test_same_telegram_id_in_other_chat_is_another_message(sm):
    async with sm.begin() as s:
        a = await record(s, chat_id=-1, tg_id=1)
        b = await record(s, chat_id=-2, tg_id=1)
    assert a.message_id != b.message_id and not b.edited


async def test_user_upsert_keeps_first_seen_and_updates_username(sm):
    async with sm.begin() as s:
        await repo.upsert_user(s, 5, username="old")
    async with sm() as s:
        first_seen = (await s.get(User, 5)).first_seen
    async with sm.begin() as s:
        await repo.upsert_user(s, 5, username="new")
        await repo.upsert_user(s, 5)  # no username: keeps the known one
    async with sm() as s:
        user = await s.get(User, 5)
        assert user.username == "new" and user.first_seen == first_seen
        assert first_seen.tzinfo is not None


async def test_opt_out_flag(sm):
    async with sm() as s:
        assert await repo.is_opted_out(s, 77) is False
    async with sm.begin() as s:
        await repo.set_opted_out(s, 77)
    async with sm() as s:
        assert await repo.is_opted_out(s, 77) is True
    async with sm.begin() as s:
        await repo.set_opted_out(s, 77, False)
    async with sm() as s:
        assert await repo.is_opted_out(s, 77) is False


async def test_console_chat_and_authorless_message(sm):
    from storage.models import CONSOLE_CHAT_ID, CONSOLE_USER_ID

    async with sm.begin() as s:
        rec = await record(s, chat_id=CONSOLE_CHAT_ID, user_id=CONSOLE_USER_ID, chat_type="console")
        anon = await record(s, chat_id=-9, user_id=None, chat_type="channel")
    async with sm() as s:
        assert (await s.get(Chat, 0)).type == "console"
        assert (await repo.get_message(s, rec.message_id)).user_id == 0
        assert (await repo.get_message(s, anon.message_id)).user_id is None


async def test_unit_of_work_that_raises_leaves_nothing(sm):
    with pytest.raises(RuntimeError, match="half way"):
        async with sm.begin() as s:
            rec = await record(s, tg_id=1, text="doomed")
            await repo.set_label(s, rec.message_id, 11, "neutral", source="inline")
            raise RuntimeError("crash half way")
    async with sm() as s:
        for table in (User, Chat, Message, Prediction):
            assert await s.scalar(select(func.count()).select_from(table)) == 0


async def test_failed_statement_rolls_back_whole_unit(sm):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with sm.begin() as s:
            await record(s, tg_id=1)
            # A prediction for a message that does not exist violates the foreign key.
            await repo.add_prediction(
                s, 999, model_version="v1", label="x", confidence=1.0, probs={"x": 1.0}
            )
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 0


def test_top_margin():
    assert repo.top_margin({"a": 0.5, "b": 0.3, "c": 0.2}) == pytest.approx(0.2)
    assert repo.top_margin({"a": 1.0}) == 1.0
    assert repo.top_margin({}) == 0.0
