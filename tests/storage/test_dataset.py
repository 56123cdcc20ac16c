"""Training data: resolved labels, stable eval split, provenance, new-label counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import repositories as repo
from tests.storage.conftest import record


def test_split_is_stable_and_about_twenty_percent():
    splits = [repo.split_of(i) for i in range(1, 10_001)]
    share = splits.count("eval") / len(splits)
    assert 0.18 < share < 0.22
    assert repo.EVAL_FRACTION == 0.2
    # Deterministic across calls (and processes: sha256, not Python's salted hash()).
    assert [repo.split_of(i) for i in range(1, 10_001)] == splits
    # Pinned: changing the hash would silently move the eval split of every existing database.
    assert [i for i in range(1, 40) if repo.split_of(i) == "eval"] == [8, 13, 18, 21, 35, 39]
    assert all(repo.split_of(i, eval_fraction=0.0) == "train" for i in range(100))


async def test_labelled_examples(sm):
    async with sm.begin() as s:
        ids = [(await record(s, tg_id=i, text=f"text {i}")).message_id for i in range(4)]
        await repo.set_label(s, ids[0], 1, "positive", source="inline")
        await repo.set_label(s, ids[1], 1, "negative", source="queue")
        await repo.set_label(s, ids[1], 2, "negative", source="inline")
        await repo.set_label(s, ids[1], 3, "neutral", source="queue")
        await repo.set_label(s, ids[2], 1, "positive", source="queue")
        await repo.set_label(s, ids[2], 2, "negative", source="queue")  # tie: left out
        rows = await repo.import_labels(s, [("imported text", "neutral")])
    assert rows.created == 1
    async with sm() as s:
        examples = await repo.labelled_examples(s)
    by_text = {e.text: e for e in examples}
    assert set(by_text) == {"text 0", "text 1", "imported text"}
    two = by_text["text 1"]
    assert (two.label, two.n_labels, two.sources) == ("negative", 3, ("inline", "queue"))
    assert abs(two.agreement - 2 / 3) < 1e-9 and two.user_labelled
    assert by_text["imported text"].sources == ("import",)
    assert not by_text["imported text"].user_labelled
    for e in examples:
        assert e.split == repo.split_of(e.message_id)
        assert e.last_labelled_at.tzinfo is not None
    async with sm() as s:
        train = await repo.labelled_examples(s, split="train")
        evals = await repo.labelled_examples(s, split="eval")
    assert {e.message_id for e in train} | {e.message_id for e in evals} == {
        e.message_id for e in examples
    }


async def test_split_does_not_move_when_data_grows(sm):
    async with sm.begin() as s:
        for i in range(30):
            mid = (await record(s, tg_id=i)).message_id
            await repo.set_label(s, mid, 1, "positive", source="inline")
    async with sm() as s:
        before = {e.message_id: e.split for e in await repo.labelled_examples(s)}
    async with sm.begin() as s:
        for i in range(30, 60):
            mid = (await record(s, tg_id=i)).message_id
            await repo.set_label(s, mid, 1, "negative", source="inline")
    async with sm() as s:
        after = {e.message_id: e.split for e in await repo.labelled_examples(s)}
    assert {k: after[k] for k in before} == before
    assert "eval" in after.values() and "train" in after.values()


async def test_count_new_resolved_labels_since(sm):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1)).message_id
        b = (await record(s, tg_id=2)).message_id
        c = (await record(s, tg_id=3)).message_id
        await repo.set_label(s, a, 1, "positive", source="inline")
    cut = datetime.now(UTC)
    async with sm.begin() as s:
        await repo.set_label(s, b, 1, "positive", source="inline")
        await repo.set_label(s, c, 1, "positive", source="inline")
        await repo.set_label(s, c, 2, "negative", source="inline")  # a tie is resolved too
    async with sm() as s:
        assert await repo.count_new_resolved_labels(s, None) == 3
        assert await repo.count_new_resolved_labels(s, cut) == 2
        assert await repo.count_new_resolved_labels(s, cut + timedelta(hours=1)) == 0


async def test_new_labels_since_last_successful_run(sm):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1)).message_id
        b = (await record(s, tg_id=2)).message_id
        await repo.set_label(s, a, 1, "positive", source="inline")
    async with sm() as s:
        assert await repo.new_labels_since_last_run(s) == 1
    async with sm.begin() as s:
        run = await repo.start_training_run(s, "cli")
        await repo.finish_training_run(s, run.id, status="succeeded", decision="promoted")
        failed = await repo.start_training_run(s, "schedule")
        await repo.finish_training_run(s, failed.id, status="failed", error="boom")
    async with sm.begin() as s:
        await repo.set_label(s, b, 1, "negative", source="queue")
    async with sm() as s:
        # The failed run does not count as trained: only b is new since the successful one.
        assert await repo.new_labels_since_last_run(s) == 1
        assert await repo.last_trained_at(s) is not None
