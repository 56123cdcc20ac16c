"""What the weighted resolution reads and keeps (also on PostgreSQL with
SENTIBOT_TEST_POSTGRES_URL): label rows, the model's guesses, annotator states, reviews, a run's
label checks, and /forget of a reviewer."""

from __future__ import annotations

from storage import repositories as repo
from tests.storage.conftest import record


async def test_label_rows_guesses_and_recent(sm):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1, text="first")).message_id
        b = (await record(s, tg_id=2, text="second")).message_id
        await repo.add_prediction(
            s,
            a,
            model_version="v0002",
            label="negative",
            confidence=0.8,
            probs={"negative": 0.8, "neutral": 0.1, "positive": 0.1},
        )
        await repo.set_label(s, a, 5, "positive", source="queue")
        await repo.set_label(s, a, None, "negative", source="import")
        await repo.set_label(s, b, 6, "neutral", source="inline")
    async with sm() as s:
        rows = await repo.label_rows(s)
        assert [(r.message_id, r.user_id, r.label, r.text) for r in rows] == [
            (a, 5, "positive", "first"),
            (a, None, "negative", "first"),
            (b, 6, "neutral", "second"),
        ]
        assert (await repo.model_guesses(s, "v0002"))[a]["negative"] == 0.8
        assert (await repo.model_guesses(s, "v0001"))[a]["positive"] == 0.7  # its own version
        assert sorted(m for m, _ in await repo.recently_labelled(s, 10)) == [a, b]
        assert await repo.user_id_by_username(s, "NOBODY") is None


async def test_annotator_states_and_flags_once(sm):
    async with sm.begin() as s:
        assert await repo.set_excluded(s, "42", True, 1)
        assert not await repo.set_excluded(s, "42", True, 1)
        assert not await repo.set_excluded(s, "43", False, 1)  # never excluded: nothing to do
        assert await repo.mark_flagged(s, [("42", 0.1), ("inline", 0.2)]) == ["42", "inline"]
        assert await repo.mark_flagged(s, [("42", 0.05)]) == []
    async with sm() as s:
        states = await repo.annotator_states(s)
        assert states["42"].excluded and states["42"].flagged_at is not None
        assert not states["inline"].excluded and states["inline"].reliability == 0.2
    async with sm.begin() as s:
        assert await repo.set_excluded(s, "42", False, 1)
        await repo.forget_user(s, 42)
    async with sm() as s:
        assert "42" not in await repo.annotator_states(s)


async def test_reviews_replace_decide_and_run_details(sm):
    async with sm.begin() as s:
        ids = [(await record(s, tg_id=i, text=f"t{i}")).message_id for i in range(3)]
        run = await repo.start_training_run(s, "cli")
        suspects = [
            repo.Suspect(m, "positive", "negative", 0.1 * (i + 1)) for i, m in enumerate(ids)
        ]
        assert (
            await repo.replace_pending_reviews(
                s, suspects + [repo.Suspect(999, "a", "b", 0)], run.id
            )
            == 3
        )
    async with sm.begin() as s:
        item, left = await repo.next_review(s)
        assert (item.message_id, item.text, left) == (ids[0], "t0", 3)
        item, left = await repo.next_review(s, skip=[ids[0]])
        assert item.message_id == ids[1] and left == 2
        row = await repo.decide_review(s, ids[0], "negative", 7)
        assert row.status == "changed" and await repo.decide_review(s, ids[0], "x", 7) is None
        await repo.add_run_details(s, run.id, {"learning_curve": {"verdict": "rising"}})
        await repo.finish_training_run(s, run.id, status="succeeded", decision="promoted")
    async with sm.begin() as s:
        # The next run's suspects replace the pending ones; the decided one is not asked again.
        assert await repo.replace_pending_reviews(s, suspects[:2], None) == 1
        decided, pending = await repo.review_states(s)
        assert decided == {ids[0]: "negative"} and pending == {ids[1]}
        assert await repo.pending_review_count(s) == 1
        assert (await repo.last_learning_curve(s)) == {"verdict": "rising"}
        await repo.forget_user(s, 7)
    async with sm() as s:
        assert (await repo.next_review(s, only=ids[1]))[0].message_id == ids[1]
