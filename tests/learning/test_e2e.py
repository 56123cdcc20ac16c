"""The learning loop end to end: the real bot (`serve`, as `sentibot run` runs it) against the
fake Bot API server, a real SQLite file, the tiny model and real training worker processes (the
bot trains on the tiny corpus: `learning_options` in tests/learning/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.models import Label, Prediction, TrainingRun
from tests.e2e.conftest import ADMIN, ALICE, ANNOTATOR, BOB, GROUP
from tests.learning.conftest import chat_texts

LENIENT = {"promotion_tolerance": 0.2, "promotion_max_recall_drop": 0.5}


async def chat_history(bot, items) -> None:
    """Alice writes every text to the bot and gets each one scored."""
    for text, _ in items:
        await bot.say(ALICE, text)


async def latest_version_for(bot, text: str) -> str:
    await bot.say(BOB, text)
    async with bot.runtime.sessionmaker() as session:
        return await session.scalar(
            select(Prediction.model_version).order_by(Prediction.id.desc()).limit(1)
        )


def truth_of(message_text: str, truth: dict[str, str]) -> str:
    [label] = [label for text, label in truth.items() if text in message_text]
    return label


async def press_and_wait(bot, message, button, user) -> dict:
    edits = len(message.edits)
    query = bot.fake.press(message, button, user)
    answer = await bot.fake.answer_for(query)
    await bot.fake.wait_for(lambda: len(message.edits) > edits)
    return answer


@pytest.mark.slow
async def test_label_queue_retrain_models_predict_and_rollback(start_bot):
    items = chat_texts(36)
    truth = dict(items)
    async with start_bot(**LENIENT) as bot:
        await chat_history(bot, items)
        session_msg = await bot.say(ANNOTATOR, "/label")
        assert "Labelled this session: 0 · left in the queue: 36" in session_msg.text
        assert [b["text"].split()[-1] for b in session_msg.buttons[:3]] == [
            "negative",
            "neutral",
            "positive",
        ]
        assert all(len(b["callback_data"].encode()) <= 64 for b in session_msg.buttons)
        labelled = 0
        step = 0
        while labelled < 30:
            step += 1
            if step == 3:
                await press_and_wait(bot, session_msg, "Skip", ANNOTATOR)
                continue
            label = truth_of(session_msg.text, truth)
            await press_and_wait(bot, session_msg, label, ANNOTATOR)
            labelled += 1
            if step == 6:  # undo shows the same item again, then it is labelled once more
                shown = session_msg.edits[-1]
                await press_and_wait(bot, session_msg, "Undo", ANNOTATOR)
                labelled -= 1
                assert truth_of(session_msg.text, truth) == truth_of(shown, truth)
                assert f"Labelled this session: {labelled} ·" in session_msg.text
        assert f"Labelled this session: 30 · left in the queue: {36 - 30 - 1}" in session_msg.text
        await press_and_wait(bot, session_msg, "Stop", ANNOTATOR)
        assert "Stopped" in session_msg.text and not session_msg.buttons
        async with bot.runtime.sessionmaker() as session:
            rows = (
                await session.execute(select(Label.source, func.count()).group_by(Label.source))
            ).all()
        assert rows == [("queue", 30)]

        progress = await bot.say(ADMIN, "/retrain")
        photo = await bot.fake.next_from_bot(ADMIN["id"], timeout=120)
        assert photo.method == "sendPhoto" and photo.file_bytes.startswith(b"\x89PNG")
        assert "Confusion matrix of v0002" in photo.text
        assert any("epoch" in e for e in progress.edits), progress.edits
        report = progress.text
        assert "Retraining: promoted" in report and "macro-F1: candidate" in report
        assert "recall negative" in report and "Why:" in report

        models = await bot.say(ADMIN, "/models")
        lines = models.text.splitlines()
        assert lines[1].startswith("v0002") and "active" in lines[1] and "training rows" in lines[1]
        assert lines[2].startswith("v0001") and "retired" in lines[2]
        chart = await bot.fake.next_from_bot(ADMIN["id"])  # macro-F1 by version
        assert chart.method == "sendPhoto" and chart.file_bytes.startswith(b"\x89PNG")
        assert await latest_version_for(bot, "what a wonderful day") == "v0002"

        back = await bot.say(ADMIN, "/rollback")
        assert "v0002 → v0001" in back.text
        assert await latest_version_for(bot, "what a horrible day") == "v0001"
        refused = await bot.say(ADMIN, "/rollback v0009")
        assert "Can't roll back" in refused.text and "v0009" in refused.text
        async with bot.runtime.sessionmaker() as session:
            [audit] = await repo.list_audit(session, action="rollback")
            assert audit.user_id == ADMIN["id"] and audit.arguments == {
                "from": "v0002",
                "to": "v0001",
            }


@pytest.mark.slow
async def test_killed_worker_is_reported_and_the_bot_answers_throughout(start_bot):
    async with start_bot() as bot:
        progress = await bot.say(ADMIN, "/retrain force")
        learning = bot.runtime.learning
        await bot.fake.wait_for(lambda: learning.retrainer.worker_pid is not None, timeout=30)
        busy = await bot.say(ADMIN, "/retrain force")
        assert "already in progress" in busy.text
        pid = learning.retrainer.worker_pid
        reply = await bot.say(ALICE, "I love this, it is great!")  # answered while training
        assert "positive" in reply.text
        os.kill(pid, signal.SIGKILL)
        await bot.fake.wait_for(lambda: "failed" in (progress.text or ""), timeout=60)
        assert "killed" in progress.text and "v0001 is unchanged" in progress.text
        assert bot.runtime.predictor.version == "v0001"
        reply = await bot.say(ALICE, "What an awful day :(")
        assert "negative" in reply.text
        async with bot.runtime.sessionmaker() as session:
            run = await session.scalar(select(TrainingRun))
        assert run.status == "failed" and "killed" in run.error and run.requested_by == ADMIN["id"]


@pytest.mark.slow
async def test_scheduled_retrain_fires_only_with_enough_new_labels(start_bot):
    settings = {"retrain_interval_minutes": 0.02, "retrain_min_new_labels": 4, **LENIENT}
    async with start_bot(**settings) as bot:
        items = chat_texts(6)
        await chat_history(bot, items)
        await asyncio.sleep(3)  # two ticks of the schedule, no labels: nothing happens
        async with bot.runtime.sessionmaker() as session:
            assert await repo.list_training_runs(session) == []
        learning = bot.runtime.learning
        for _ in range(4):
            view = await learning.queue.next_item(ANNOTATOR["id"])
            await learning.queue.label(
                ANNOTATOR["id"], view.item.message_id, dict(items)[view.item.text]
            )
        report = await bot.fake.next_from_bot(ADMIN["id"], timeout=120)
        assert (
            report.text.startswith("✅ Scheduled retraining: promoted") or "rejected" in report.text
        )
        async with bot.runtime.sessionmaker() as session:
            [run] = await repo.list_training_runs(session)
        assert run.trigger == "schedule" and run.status == "succeeded"


@pytest.mark.slow
async def test_a_failed_scheduled_run_reports_when_it_retries_then_retries(start_bot):
    settings = {"retrain_interval_minutes": 0.02, "retrain_min_new_labels": 4, **LENIENT}
    async with start_bot(**settings) as bot:
        items = chat_texts(6)
        await chat_history(bot, items)
        learning = bot.runtime.learning
        for _ in range(4):
            view = await learning.queue.next_item(ANNOTATOR["id"])
            await learning.queue.label(
                ANNOTATOR["id"], view.item.message_id, dict(items)[view.item.text]
            )
        for _ in range(12_000):  # the next tick starts the run in a worker process
            if learning.retrainer.worker_pid:
                break
            await asyncio.sleep(0.01)
        os.kill(learning.retrainer.worker_pid, signal.SIGKILL)
        report = await bot.fake.next_from_bot(ADMIN["id"], timeout=120)
        assert report.text.startswith("❌ Scheduled retraining: failed")
        assert "The schedule tries again after" in report.text
        # After the back-off (one interval here) the schedule tries again, and succeeds.
        report = await bot.fake.next_from_bot(ADMIN["id"], timeout=120)
        assert "Scheduled retraining: promoted" in report.text or "rejected" in report.text
        async with bot.runtime.sessionmaker() as session:
            runs = await repo.list_training_runs(session)
        assert [r.status for r in runs] == ["succeeded", "failed"]


async def test_only_admins_retrain_list_and_roll_back_and_only_annotators_label(bot):
    for user in (ALICE, ANNOTATOR):
        for command in ("/retrain", "/retrain force", "/models", "/rollback", "/rollback v0001"):
            answer = await bot.say(user, command)
            assert answer.text == "Sorry, that command is for admins only.", (user, command)
    answer = await bot.say(ALICE, "/label")
    assert answer.text == "Sorry, that command is for annotators only."
    async with bot.runtime.sessionmaker() as session:
        assert await repo.list_training_runs(session) == []
        assert await repo.list_audit(session) == []
    # A queue button forged by a non-annotator is refused politely.
    reply = await bot.say(ALICE, "hello there")
    query = bot.fake.callback(reply, "q:x", ALICE)
    assert "annotators only" in (await bot.fake.answer_for(query))["text"]
    query = bot.fake.callback(reply, "q:l:abc:positive", ANNOTATOR)
    assert "doesn't work" in (await bot.fake.answer_for(query))["text"]


async def test_admin_usage_errors_and_empty_queue(bot):
    answer = await bot.say(ADMIN, "/retrain now please")
    assert answer.text.startswith("Usage: /retrain")
    answer = await bot.say(ADMIN, "/rollback yesterday")
    assert answer.text.startswith("Usage: /rollback")
    answer = await bot.say(ADMIN, "/retrain")
    assert "new label" in answer.text  # nothing new: skipped, with a hint about force
    answer = await bot.say(ADMIN, "/label")
    assert "queue is empty" in answer.text and not answer.buttons


async def test_status_shows_annotator_counts_and_kappa_with_two_labels_per_item(start_bot):
    items = chat_texts(6)
    truth = dict(items)
    two = {"labels_per_item": 2, "annotator_ids": [ANNOTATOR["id"], BOB["id"]]}
    async with start_bot(**two) as bot:
        for person in (ANNOTATOR, BOB):  # so the bot knows their usernames
            await bot.say(person, f"hello from {person['first_name']}")
        await chat_history(bot, items)
        learning = bot.runtime.learning
        flip = {"positive": "negative", "negative": "positive", "neutral": "neutral"}
        for person, wrong_every in ((ANNOTATOR, 0), (BOB, 3)):
            view = await learning.queue.next_item(person["id"])
            n = 0
            while view.item is not None:
                if view.item.text not in truth:  # the hellos: not part of this test
                    view = await learning.queue.skip(person["id"], view.item.message_id)
                    continue
                label = truth[view.item.text]
                if wrong_every and n % wrong_every == 0:
                    label = flip[label]
                view = await learning.queue.label(person["id"], view.item.message_id, label)
                n += 1
            assert n == 6  # each item is shown to both annotators
        status = await bot.say(ADMIN, "/status")
        # Both annotators labelled 6 items; Bob flipped 2 of the 4 non-neutral ones.
        assert "labels per annotator: @bob: 6, @nina_labels: 6" in status.text
        assert "agreement @bob ↔ @nina_labels: Cohen's κ" in status.text
        assert "on 6 shared items, 67% identical" in status.text
        group = await bot.say(ANNOTATOR, "/label", chat=GROUP)
        assert "private chat" in group.text


@pytest.mark.slow
async def test_stopping_the_bot_during_training_is_quick_and_recorded(start_bot):
    from storage.db import create_engine, create_sessionmaker

    async with start_bot() as bot:
        await bot.say(ADMIN, "/retrain force")
        learning = bot.runtime.learning
        await bot.fake.wait_for(lambda: learning.retrainer.worker_pid is not None, timeout=30)
        pid = learning.retrainer.worker_pid
        stopping = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - stopping < 15
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone too
    engine = create_engine(bot.settings.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            run = await session.scalar(select(TrainingRun))
    finally:
        await engine.dispose()
    assert run.status == "failed" and "bot stopped" in run.error
