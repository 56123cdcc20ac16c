"""The labeling queue: uncertainty order, skip, labels per item, cold start."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import repositories as repo
from tests.storage.conftest import record


def probs_with_margin(margin: float) -> dict[str, float]:
    top = (1 + margin) / 2
    return {"negative": 1 - top, "neutral": 0.0, "positive": top}


async def test_order_is_smallest_margin_under_active_version(sm):
    async with sm.begin() as s:
        confident = await record(s, tg_id=1, text="sure", probs=probs_with_margin(0.9))
        unsure = await record(s, tg_id=2, text="unsure", probs=probs_with_margin(0.05))
        middle = await record(s, tg_id=3, text="middle", probs=probs_with_margin(0.4))
        # An old version's prediction must not count: under v0002 "sure" becomes the most unsure.
        await repo.add_prediction(
            s,
            confident.message_id,
            model_version="v0002",
            label="positive",
            confidence=0.5,
            probs=probs_with_margin(0.01),
        )
    async with sm() as s:
        item = await repo.next_queue_item(s, 7, active_version="v0001")
        assert item.message_id == unsure.message_id and item.text == "unsure"
        assert item.margin is not None and abs(item.margin - 0.05) < 1e-9
        assert item.predicted_label == "positive"
        v2 = await repo.next_queue_item(s, 7, active_version="v0002")
        assert v2.message_id == confident.message_id
        # Unscored by v0002: still in the queue, after the scored one.
        assert await repo.queue_remaining(s, 7) == 3
    async with sm.begin() as s:
        await repo.set_label(s, unsure.message_id, 7, "positive", source="queue")
    async with sm() as s:
        assert (await repo.next_queue_item(s, 7, active_version="v0001")).message_id == (
            middle.message_id
        )


async def test_resolved_items_leave_the_queue_for_everyone(sm):
    async with sm.begin() as s:
        a = await record(s, tg_id=1, probs=probs_with_margin(0.1))
        b = await record(s, tg_id=2, probs=probs_with_margin(0.2))
        await repo.set_label(s, a.message_id, 1, "positive", source="inline")
    async with sm() as s:
        item = await repo.next_queue_item(s, 2, active_version="v0001")
        assert item.message_id == b.message_id
        assert await repo.queue_remaining(s, 2) == 1


async def test_labelled_and_skipped_never_come_back(sm):
    async with sm.begin() as s:
        ids = [
            (await record(s, tg_id=i, probs=probs_with_margin(i / 10))).message_id for i in range(3)
        ]
    async with sm.begin() as s:
        await repo.skip_queue_item(s, 5, ids[0])
        await repo.skip_queue_item(s, 5, ids[0])  # twice is fine
    async with sm() as s:
        assert (await repo.next_queue_item(s, 5, active_version="v0001")).message_id == ids[1]
        assert await repo.queue_remaining(s, 5) == 2
        # Someone else still sees the skipped item.
        assert (await repo.next_queue_item(s, 6, active_version="v0001")).message_id == ids[0]
    async with sm.begin() as s:
        await repo.skip_queue_item(s, 5, ids[1])
        await repo.skip_queue_item(s, 5, ids[2])
    async with sm() as s:
        assert await repo.next_queue_item(s, 5, active_version="v0001") is None
        assert await repo.queue_remaining(s, 5) == 0


async def test_labels_per_item_keeps_item_until_enough_labels(sm):
    async with sm.begin() as s:
        mid = (await record(s, tg_id=1)).message_id
        await repo.set_label(s, mid, 1, "positive", source="queue")
    async with sm() as s:
        assert await repo.next_queue_item(s, 2, active_version="v0001", labels_per_item=1) is None
        item = await repo.next_queue_item(s, 2, active_version="v0001", labels_per_item=2)
        assert item.message_id == mid
        assert await repo.queue_remaining(s, 2, labels_per_item=2) == 1
        # The first annotator never sees it again.
        assert await repo.next_queue_item(s, 1, active_version="v0001", labels_per_item=2) is None
    async with sm.begin() as s:
        await repo.set_label(s, mid, 2, "negative", source="queue")  # 1 vs 1: a tie
    async with sm() as s:
        tie = await repo.next_queue_item(s, 3, active_version="v0001", labels_per_item=2)
        assert tie.message_id == mid  # a tie stays open for a third annotator
    async with sm.begin() as s:
        await repo.set_label(s, mid, 3, "negative", source="queue")
    async with sm() as s:
        assert await repo.next_queue_item(s, 4, active_version="v0001", labels_per_item=2) is None


async def test_cold_start_is_random_among_unscored(sm):
    async with sm.begin() as s:
        ids = {(await record(s, tg_id=i, version="v0009")).message_id for i in range(20)}
    seen = set()
    async with sm() as s:
        for _ in range(40):
            item = await repo.next_queue_item(s, 1, active_version="v0001")
            assert item.margin is None and item.predicted_label is None
            seen.add(item.message_id)
        no_model = await repo.next_queue_item(s, 1, active_version=None)
    assert seen <= ids and len(seen) > 3  # random, not always the first row
    assert no_model.message_id in ids


async def test_empty_queue(sm):
    async with sm() as s:
        assert await repo.next_queue_item(s, 1, active_version="v0001") is None
        assert await repo.next_queue_item(s, 1, active_version=None) is None


async def test_an_edit_counts_with_its_latest_prediction(sm):
    async with sm.begin() as s:
        edited = await record(s, tg_id=1, text="was unsure", probs=probs_with_margin(0.01))
        other = await record(s, tg_id=2, text="other", probs=probs_with_margin(0.3))
        # Re-scored after an edit by the same version: now confident.
        await repo.add_prediction(
            s,
            edited.message_id,
            model_version="v0001",
            label="positive",
            confidence=0.95,
            probs=probs_with_margin(0.9),
        )
    async with sm() as s:
        first = await repo.next_queue_item(s, 7, active_version="v0001")
        assert first.message_id == other.message_id
    async with sm.begin() as s:
        await repo.skip_queue_item(s, 7, other.message_id)
    async with sm() as s:
        second = await repo.next_queue_item(s, 7, active_version="v0001")
        assert second.message_id == edited.message_id and abs(second.margin - 0.9) < 1e-9


async def test_remaining_counts_each_done_message_once(sm):
    async with sm.begin() as s:
        ids = [(await record(s, tg_id=i)).message_id for i in range(6)]
        await repo.set_label(s, ids[0], 7, "positive", source="queue")  # mine and resolved
        await repo.skip_queue_item(s, 7, ids[0])  # … and skipped too
        await repo.set_label(s, ids[1], 8, "positive", source="inline")  # resolved by another
        await repo.skip_queue_item(s, 7, ids[2])
        await repo.set_label(s, ids[3], 8, "positive", source="queue")  # a tie: still open
        await repo.set_label(s, ids[3], 9, "negative", source="queue")
    async with sm() as s:
        assert await repo.queue_remaining(s, 7) == 3  # ids 3, 4, 5
        assert await repo.queue_remaining(s, 7, labels_per_item=2) == 4  # id 1 has 1 label


@pytest.mark.sqlite_only
async def test_the_queue_walks_the_margin_index_instead_of_sorting(sm):
    """The scored pick must not sort all predictions on each /label (SQLite's plan)."""
    from sqlalchemy.dialects import sqlite

    stmt = repo.most_uncertain(7, "v0001", 1)
    sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with sm() as s:
        rows = list(await s.execute(text("EXPLAIN QUERY PLAN " + sql)))
    plan = " | ".join(row[-1] for row in rows)
    top_level = [row[-1] for row in rows if row[1] == 0]  # the outer query, not its subqueries
    assert "SEARCH predictions USING INDEX ix_predictions_version_margin" in top_level[0], plan
    assert not any("TEMP B-TREE FOR ORDER BY" in step for step in top_level), plan
    assert plan.count("SCAN") == 0, plan  # every subquery is an index lookup


async def test_unscored_messages_are_the_unlabelled_ones_a_version_has_not_scored(sm):
    async with sm.begin() as s:
        old = await record(s, tg_id=1, text="old")
        labelled = await record(s, tg_id=2, text="labelled")
        scored = await record(s, tg_id=3, text="scored by v0002")
        new = await record(s, tg_id=4, text="new")
        await repo.set_label(s, labelled.message_id, 7, "positive", source="queue")
        await repo.add_prediction(
            s,
            scored.message_id,
            model_version="v0002",
            label="positive",
            confidence=0.6,
            probs=probs_with_margin(0.2),
        )
    async with sm() as s:
        rows = await repo.unscored_messages(s, "v0002", limit=10)
        assert rows == [(new.message_id, "new"), (old.message_id, "old")]  # newest first
        assert await repo.unscored_messages(s, "v0002", limit=1) == [(new.message_id, "new")]
        assert len(await repo.unscored_messages(s, "v0001", limit=10)) == 0
