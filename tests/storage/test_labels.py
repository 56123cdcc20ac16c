"""Labels: set, replace, history, undo, majority and ties."""

from __future__ import annotations

import pytest

from storage import repositories as repo
from storage.errors import NotFoundError
from tests.storage.conftest import record


@pytest.fixture
async def mid(sm) -> int:
    async with sm.begin() as s:
        return (await record(s, tg_id=1)).message_id


async def test_set_replace_unchanged_and_history(sm, mid):
    async with sm.begin() as s:
        first = await repo.set_label(s, mid, 1, "positive", source="inline")
        again = await repo.set_label(s, mid, 1, "positive", source="inline")
        changed = await repo.set_label(s, mid, 1, "negative", source="queue")
    assert (first.action, again.action, changed.action) == ("set", "unchanged", "replace")
    assert changed.previous == "positive"
    async with sm() as s:
        labels = await repo.labels_for_message(s, mid)
        assert [(lb.user_id, lb.label, lb.source) for lb in labels] == [(1, "negative", "queue")]
        history = await repo.label_history(s, mid)
        assert [(h.action, h.label, h.previous_label) for h in history] == [
            ("set", "positive", None),
            ("replace", "negative", "positive"),
        ]
        assert await repo.get_label(s, mid, 1) == "negative"
        assert await repo.count_labels(s) == 1


async def test_validation(sm, mid):
    async with sm.begin() as s:
        with pytest.raises(ValueError, match="source"):
            await repo.set_label(s, mid, 1, "positive", source="telepathy")
        with pytest.raises(ValueError, match="label"):
            await repo.set_label(s, mid, 1, "happy", source="inline", allowed=["positive"])
        with pytest.raises(NotFoundError):
            await repo.set_label(s, 12345, 1, "positive", source="inline")


async def test_majority_and_tie(sm, mid):
    async with sm.begin() as s:
        await repo.set_label(s, mid, 1, "positive", source="inline")
        await repo.set_label(s, mid, 2, "negative", source="queue")
    async with sm() as s:
        assert await repo.resolved_label(s, mid) is None  # 1 vs 1: a tie is unresolved
    async with sm.begin() as s:
        await repo.set_label(s, mid, 3, "positive", source="queue")
    async with sm() as s:
        assert await repo.resolved_label(s, mid) == "positive"
        assert await repo.resolved_labels(s, [mid, 999]) == {mid: "positive", 999: None}


def test_majority_function():
    assert repo.majority([]) is None
    assert repo.majority(["a"]) == "a"
    assert repo.majority(["a", "b"]) is None
    assert repo.majority(["a", "b", "b"]) == "b"
    assert repo.majority(["a", "a", "b", "b", "c"]) is None


async def test_remove_label_keeps_history(sm, mid):
    async with sm.begin() as s:
        await repo.set_label(s, mid, 1, "neutral", source="inline")
        undone = await repo.remove_label(s, mid, 1)
        assert await repo.remove_label(s, mid, 1) is None
    assert (undone.message_id, undone.label) == (mid, "neutral")
    async with sm() as s:
        assert await repo.labels_for_message(s, mid) == []
        assert [h.action for h in await repo.label_history(s, mid)] == ["set", "undo"]


async def test_undo_last_label_takes_the_most_recent(sm):
    async with sm.begin() as s:
        ids = [(await record(s, tg_id=i)).message_id for i in range(3)]
    async with sm.begin() as s:
        await repo.set_label(s, ids[0], 1, "positive", source="queue")
        await repo.set_label(s, ids[1], 1, "negative", source="queue")
        await repo.set_label(s, ids[2], 1, "neutral", source="inline")
        await repo.set_label(s, ids[1], 2, "neutral", source="queue")  # someone else
    async with sm.begin() as s:
        queue_undo = await repo.undo_last_label(s, 1, source="queue")
        any_undo = await repo.undo_last_label(s, 1)
    assert (queue_undo.message_id, queue_undo.label) == (ids[1], "negative")
    assert any_undo.message_id == ids[2]
    async with sm() as s:
        assert await repo.get_label(s, ids[0], 1) == "positive"
        assert await repo.get_label(s, ids[1], 2) == "neutral"  # other person's label untouched
    async with sm.begin() as s:
        assert (await repo.undo_last_label(s, 1)).message_id == ids[0]
        assert await repo.undo_last_label(s, 1) is None


async def test_replaced_label_becomes_most_recent(sm):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1)).message_id
        b = (await record(s, tg_id=2)).message_id
        await repo.set_label(s, a, 1, "positive", source="queue")
        await repo.set_label(s, b, 1, "positive", source="queue")
        await repo.set_label(s, a, 1, "negative", source="queue")  # changed mind on a
    async with sm.begin() as s:
        assert (await repo.undo_last_label(s, 1)).message_id == a
