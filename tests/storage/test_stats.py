"""/mood counts, /status totals, annotator counts and pairs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import repositories as repo
from tests.storage.conftest import record

NEG = {"negative": 0.8, "neutral": 0.1, "positive": 0.1}
POS = {"negative": 0.1, "neutral": 0.1, "positive": 0.8}


async def test_mood_counts_per_chat_and_window(sm):
    old = datetime.now(UTC) - timedelta(days=3)
    async with sm.begin() as s:
        await record(s, chat_id=-1, tg_id=1, probs=POS)
        await record(s, chat_id=-1, tg_id=2, probs=POS)
        edited = await record(s, chat_id=-1, tg_id=3, probs=POS)
        await record(s, chat_id=-1, tg_id=3, probs=NEG)  # edit: the latest prediction counts
        await record(s, chat_id=-2, tg_id=1, probs=NEG)  # another chat
        await repo.record_scored_message(
            s,
            chat_id=-1,
            chat_type="group",
            user_id=3,
            text="old",
            model_version="v0001",
            label="neutral",
            confidence=0.5,
            probs={"negative": 0.2, "neutral": 0.5, "positive": 0.3},
            telegram_message_id=4,
            received_at=old,
        )
    assert edited.message_id
    async with sm() as s:
        assert await repo.mood_counts(s, -1) == {"positive": 2, "negative": 1, "neutral": 1}
        since = datetime.now(UTC) - timedelta(hours=24)
        assert await repo.mood_counts(s, -1, since=since) == {"positive": 2, "negative": 1}
        assert await repo.mood_counts(s, -2) == {"negative": 1}
        assert await repo.mood_counts(s, -3) == {}


async def test_mood_trend_by_day_and_hour(sm):
    now = datetime.now(UTC)
    days_ago = [0, 0, 2, 2, 2]
    async with sm.begin() as s:
        for i, (ago, probs) in enumerate(zip(days_ago, [POS, NEG, POS, POS, NEG], strict=True)):
            await repo.record_scored_message(
                s,
                chat_id=-1,
                chat_type="group",
                user_id=1,
                text=f"t{i}",
                model_version="v0001",
                label=max(probs, key=probs.get),
                confidence=0.8,
                probs=probs,
                telegram_message_id=i,
                received_at=now - timedelta(days=ago),
            )
        await record(s, chat_id=-2, tg_id=1, probs=NEG)  # another chat
    today, before = now.strftime("%Y-%m-%d"), (now - timedelta(days=2)).strftime("%Y-%m-%d")
    async with sm() as s:
        assert await repo.mood_trend(s, -1) == [
            (before, "negative", 1),
            (before, "positive", 2),
            (today, "negative", 1),
            (today, "positive", 1),
        ]
        hourly = await repo.mood_trend(s, -1, since=now - timedelta(hours=24), hourly=True)
    assert hourly == [
        (now.strftime("%Y-%m-%d %H"), "negative", 1),
        (now.strftime("%Y-%m-%d %H"), "positive", 1),
    ]


async def test_totals(sm):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1, user_id=1)).message_id
        b = (await record(s, tg_id=2, user_id=2)).message_id
        await repo.set_label(s, a, 1, "positive", source="inline")
        await repo.set_label(s, b, 1, "positive", source="inline")
        await repo.set_label(s, b, 2, "negative", source="inline")
    async with sm() as s:
        t = await repo.totals(s)
    assert (t.messages, t.users, t.chats, t.predictions, t.labels) == (2, 2, 1, 2, 3)
    assert (t.labelled_messages, t.new_labels, t.last_trained_at) == (2, 2, None)


async def test_annotator_counts_and_pairs(sm):
    async with sm.begin() as s:
        ids = [(await record(s, tg_id=i)).message_id for i in range(3)]
        await repo.set_label(s, ids[0], 1, "positive", source="queue")
        await repo.set_label(s, ids[0], 2, "positive", source="queue")
        await repo.set_label(s, ids[1], 1, "negative", source="queue")
        await repo.set_label(s, ids[1], 2, "neutral", source="inline")
        await repo.set_label(s, ids[1], 3, "neutral", source="queue")
        await repo.set_label(s, ids[2], 1, "neutral", source="queue")
        await repo.import_labels(s, [("imported", "neutral")])
    async with sm() as s:
        assert await repo.annotator_counts(s) == {1: 3, 2: 2, 3: 1}
        assert await repo.annotator_counts(s, source="queue") == {1: 3, 2: 1, 3: 1}
        pairs = await repo.annotator_pairs(s)
    got = [(p.message_id, p.user_a, p.label_a, p.user_b, p.label_b) for p in pairs]
    assert got == [
        (ids[0], 1, "positive", 2, "positive"),
        (ids[1], 1, "negative", 2, "neutral"),
        (ids[1], 1, "negative", 3, "neutral"),
        (ids[1], 2, "neutral", 3, "neutral"),
    ]


async def test_user_names_of_known_people(sm):
    async with sm.begin() as s:
        await repo.upsert_user(s, 1, username="ann", first_name="Ann")
        await repo.upsert_user(s, 2, first_name="Bob")
    async with sm() as s:
        names = await repo.user_names(s, {1, 2, 3})
        assert names == {1: ("ann", "Ann"), 2: (None, "Bob")}  # 3 is unknown
        assert await repo.user_names(s, set()) == {}
