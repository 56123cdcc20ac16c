"""SentimentService on a real database file and the tiny real model."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from bot.service import Author, ChatRef
from storage.models import Label, LabelHistory, Message, Prediction

ALICE = Author(1, "alice", "Alice")
BOB = Author(2, "bob", "Bob")
PRIVATE = ChatRef(1, "private")
GROUP = ChatRef(-100, "supergroup", "Group")


async def _count(rt, table) -> int:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(table))


async def test_score_message_predicts_and_stores(runtime):
    result = await runtime.service.score_message(
        PRIVATE, ALICE, "I love this, it is great!", telegram_message_id=10
    )
    assert result.label == "positive" and result.stored
    assert 0 < result.confidence <= 1
    assert abs(sum(result.probs.values()) - 1) < 1e-4
    assert result.model_version == "v0001"
    async with runtime.sessionmaker() as session:
        message = await session.get(Message, result.message_id)
        prediction = (await session.scalars(select(Prediction))).one()
    assert message.text == "I love this, it is great!" and message.telegram_message_id == 10
    assert prediction.label == "positive" and prediction.latency_ms is not None


async def test_edit_replaces_text_and_adds_a_prediction(runtime):
    first = await runtime.service.score_message(PRIVATE, ALICE, "hello", telegram_message_id=5)
    second = await runtime.service.score_message(
        PRIVATE, ALICE, "I hate this, it is terrible.", telegram_message_id=5
    )
    assert second.edited and second.message_id == first.message_id
    assert await _count(runtime, Message) == 1 and await _count(runtime, Prediction) == 2


async def test_an_edit_drops_the_labels_given_to_the_old_text(runtime):
    first = await runtime.service.score_message(PRIVATE, ALICE, "I love it", telegram_message_id=7)
    assert (await runtime.service.record_label(first.message_id, ALICE, "positive")).ok
    await runtime.service.score_message(PRIVATE, ALICE, "I hate it", telegram_message_id=7)
    assert await _count(runtime, Label) == 0
    async with runtime.sessionmaker() as session:
        history = (await session.execute(select(LabelHistory.action, LabelHistory.label))).all()
    assert [tuple(r) for r in history] == [("set", "positive"), ("undo", None)]
    # A message that was never labelled is edited without touching anyone's labels.
    other = await runtime.service.score_message(PRIVATE, BOB, "fine", telegram_message_id=8)
    assert (await runtime.service.record_label(other.message_id, BOB, "neutral")).ok
    await runtime.service.score_message(PRIVATE, ALICE, "I hate it!", telegram_message_id=7)
    assert await _count(runtime, Label) == 1


async def test_record_label_outcomes(runtime):
    scored = await runtime.service.score_message(
        GROUP, ALICE, "The report has ten pages", telegram_message_id=1
    )
    mid = scored.message_id
    service = runtime.service
    assert (await service.record_label(mid, BOB, "neutral", chat_id=GROUP.id)).outcome == "ok"
    again = await service.record_label(mid, BOB, "neutral", chat_id=GROUP.id)
    assert again.outcome == "unchanged" and again.ok
    changed = await service.record_label(mid, BOB, "negative")
    assert changed.outcome == "ok" and changed.previous == "neutral"
    assert changed.predicted == scored.label
    assert (await service.record_label(mid, BOB, "furious")).outcome == "unknown_label"
    assert (await service.record_label(mid + 99, BOB, "neutral")).outcome == "not_found"
    assert (
        await service.record_label(mid, BOB, "neutral", chat_id=PRIVATE.id)
    ).outcome == "wrong_chat"
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(Label.user_id, Label.label, Label.source))).all()
    assert [tuple(r) for r in rows] == [(BOB.id, "negative", "inline")]


async def test_mood_counts_per_chat_and_window(runtime):
    for i, text in enumerate(
        ["I love this, it is great!", "What an awful day :(", "Fantastic news, congratulations!"]
    ):
        await runtime.service.score_message(GROUP, ALICE, text, telegram_message_id=i)
    await runtime.service.score_message(
        PRIVATE, ALICE, "I hate this, it is terrible.", telegram_message_id=1
    )
    report = await runtime.service.mood(GROUP.id, "24h")
    assert report.total == 3
    assert report.counts == {"negative": 1, "neutral": 0, "positive": 2}
    assert list(report.counts) == ["negative", "neutral", "positive"]
    assert (await runtime.service.mood(-999, "all")).total == 0


async def test_status_reports_model_counts_and_the_learning_loop(runtime):
    scored = await runtime.service.score_message(PRIVATE, ALICE, "hi", telegram_message_id=1)
    await runtime.service.record_label(scored.message_id, ALICE, "neutral")
    report = await runtime.service.status()
    assert report.model_version == "v0001"
    assert report.metrics is not None and "macro_f1" in report.metrics
    assert (report.messages, report.labels, report.labelled_messages) == (1, 1, 1)
    assert report.untrained_labels == 1
    learning = await runtime.learning.status()  # the runtime builds the learning loop too
    assert not learning.training and learning.last_run is None and learning.annotators is None
    assert learning.interval_minutes == runtime.settings.retrain_interval_minutes


async def test_status_shows_the_served_models_metrics(runtime):
    # Another process (sentibot retrain) activated v0002; the bot serves v0001 until it syncs.
    from classifier.card import ModelCard
    from storage import repositories as repo

    async with runtime.sessionmaker.begin() as session:
        await repo.register_model_version(
            session,
            "v0002",
            folder="/nowhere/v0002",
            backbone="embedding",
            metrics=ModelCard("retrain", eval={"macro_f1": 0.123}).summary_metrics(),
        )
        await repo.activate_model_version(session, "v0002")
    report = await runtime.service.status()
    assert report.model_version == "v0001"
    assert report.metrics is not None and report.metrics["macro_f1"] != 0.123


async def test_forget_deletes_and_opts_out_until_opt_in(runtime):
    service = runtime.service
    scored = await service.score_message(PRIVATE, ALICE, "I love it", telegram_message_id=1)
    await service.record_label(scored.message_id, ALICE, "positive")
    await service.score_message(GROUP, ALICE, "hello group", telegram_message_id=2)
    other = await service.score_message(GROUP, BOB, "bob here", telegram_message_id=3)
    result = await service.forget(ALICE.id)
    assert (result.messages, result.labels) == (2, 1)
    assert await _count(runtime, Message) == 1  # only Bob's
    assert await service.is_opted_out(ALICE.id)
    skipped = await service.score_message(PRIVATE, ALICE, "still scored", telegram_message_id=4)
    assert skipped.message_id is None and skipped.label in service.labels
    assert (await service.record_label(other.message_id, ALICE, "neutral")).outcome == "opted_out"
    assert await service.opt_in(ALICE) is True
    assert await service.opt_in(ALICE) is False
    assert (await service.score_message(PRIVATE, ALICE, "back", telegram_message_id=5)).stored


async def test_export_is_csv_of_resolved_labels(runtime):
    assert (await runtime.service.export()).rows == 0
    scored = await runtime.service.score_message(
        PRIVATE, ALICE, 'comma, "quote"', telegram_message_id=1
    )
    await runtime.service.record_label(scored.message_id, ALICE, "neutral")
    export = await runtime.service.export()
    rows = list(csv.DictReader(io.StringIO(export.csv.decode("utf-8-sig"))))
    assert (
        export.rows == 1 and rows[0]["text"] == 'comma, "quote"' and rows[0]["label"] == "neutral"
    )
