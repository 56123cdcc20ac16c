"""The learning loop end to end below Telegram: queue, retrain in a real worker process, gate, hot
swap, versions, rollback, audit — on a real SQLite file and a real tiny model."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from pathlib import Path

import pytest

from bot.learning.data import USER_LABEL_WEIGHT
from bot.learning.errors import LearningError, RollbackError, TrainingInProgressError
from bot.texts import progress_text, retrain_summary
from classifier.card import read_card
from tests.learning.conftest import TRAIN_OVERRIDES, chat_texts, open_env


async def label_all(env, user_id: int, truth: dict[str, str], limit: int = 1000) -> int:
    """Label the person's whole queue with the true labels; returns how many were labelled."""
    view = await env.learning.queue.next_item(user_id)
    n = 0
    while view.item is not None and n < limit:
        view = await env.learning.queue.label(user_id, view.item.message_id, truth[view.item.text])
        n += 1
    return n


async def test_queue_order_skip_undo_and_source(env):
    items = chat_texts(12)
    truth = dict(items)
    ids = await env.add_messages(items)
    first = await env.learning.queue.next_item(2)
    assert first.remaining == 12 and first.labels == ["negative", "neutral", "positive"]
    # Uncertainty order: the first item has the smallest top-two margin of all.
    from storage import repositories as repo

    async with env.sessionmaker() as session:
        margins = [(await repo.latest_prediction(session, i)).margin for i in ids]
    assert first.item.margin == pytest.approx(min(margins))

    skipped = first.item.message_id
    view = await env.learning.queue.skip(2, skipped)
    assert view.item.message_id != skipped and view.remaining == 11
    labelled = view.item.message_id
    view = await env.learning.queue.label(2, labelled, truth[view.item.text])
    assert view.remaining == 10
    undone = await env.learning.queue.undo(2)
    assert undone.item.message_id == labelled and undone.remaining == 11
    assert await env.learning.queue.undo(2) is None  # nothing left to undo
    await label_all(env, 2, truth)
    view = await env.learning.queue.next_item(2)
    assert view.item is None and view.remaining == 0
    async with env.sessionmaker() as session:
        labels = {i: await repo.labels_for_message(session, i) for i in ids}
    assert labels[skipped] == []  # skipped never comes back to this person
    stored = [row for rows in labels.values() for row in rows]
    assert len(stored) == 11 and {row.source for row in stored} == {"queue"}
    # Another annotator still sees the skipped item (skips are per person).
    other = await env.learning.queue.next_item(3)
    assert other.item.message_id == skipped
    with pytest.raises(LearningError):
        await env.learning.queue.label(3, skipped, "ecstatic")


async def test_retrain_promotes_hot_swaps_records_and_rolls_back(env):
    from storage import repositories as repo

    items = chat_texts(30)
    await env.add_messages(items)
    assert await label_all(env, 2, dict(items)) == 30
    seen = []
    outcome = await env.learning.retrainer.retrain("admin", 1, on_progress=seen.append)
    assert outcome.status == "promoted", retrain_summary(outcome)
    assert outcome.candidate_version == "v0002" and outcome.active_version == "v0001"
    assert env.predictor.version == "v0002"
    stages = [p.stage for p in seen]
    assert stages[0] == "preparing" and "training" in stages and stages[-1] == "deciding"
    epochs = [p for p in seen if p.stage == "training" and p.epoch]
    assert epochs and progress_text(epochs[-1]).startswith("Training v0002: epoch")
    assert outcome.user_rows > 0 and outcome.train_rows == 36 + outcome.user_rows
    text = "\n".join(retrain_summary(outcome))
    assert "macro-F1: candidate" in text and "recall negative" in text and "Why:" in text

    # New requests are scored by the new version.
    [pred] = await env.predictor.predict(["what a wonderful day"])
    assert pred.model_version == "v0002"

    # Model card.
    card = read_card(env.settings.models_path / "v0002")
    assert card.kind == "retrain" and card.origin["parent"] == "v0001"
    assert card.origin["trigger"] == "admin" and card.origin["requested_by"] == 1
    data = card.data
    assert data["train"]["rows_per_source"] == {"bootstrap": 36, "queue": outcome.user_rows}
    assert len(data["eval"]["sha256"]) == 64 and data["user_label_weight"] == USER_LABEL_WEIGHT
    assert card.eval["macro_f1"] == outcome.candidate_report["macro_f1"]
    assert card.active_eval["macro_f1"] == outcome.active_report["macro_f1"]
    assert card.recipe["epochs"] == TRAIN_OVERRIDES["epochs"]
    assert "feature_cache" not in card.recipe and "device" not in card.recipe

    async with env.sessionmaker() as session:
        run = await repo.last_training_run(session)
        assert (run.trigger, run.requested_by, run.status, run.decision) == (
            "admin",
            1,
            "succeeded",
            "promoted",
        )
        assert run.candidate_version == "v0002" and run.reason
        statuses = {v.version: v.status for v in await repo.list_model_versions(session)}
        assert statuses == {"v0001": "retired", "v0002": "active"}
        assert await repo.new_labels_since_last_run(session) == 0
    models = await env.learning.versions.list_models()
    assert [m.version for m in models] == ["v0002", "v0001"]
    assert models[0].train_rows == outcome.train_rows
    assert models[0].eval_macro_f1 == pytest.approx(outcome.candidate_report["macro_f1"])

    # Rollback to the previous active version, audited.
    back = await env.learning.versions.rollback(1)
    assert (back.from_version, back.to_version) == ("v0002", "v0001")
    assert env.predictor.version == "v0001" and back.eval_rows > 0
    async with env.sessionmaker() as session:
        audit = await repo.list_audit(session, action="rollback")
        assert audit[0].user_id == 1 and audit[0].arguments == {"from": "v0002", "to": "v0001"}
        assert (await repo.get_active_model_version(session)).version == "v0001"
    with pytest.raises(RollbackError, match="already the active"):
        await env.learning.versions.rollback(1, "v0001")
    with pytest.raises(RollbackError, match="no model version v0099"):
        await env.learning.versions.rollback(1, "v0099")
    # The queue was re-scored by the model now active, so it keeps its uncertainty order.
    await env.add_messages(chat_texts(3, seed=9), chat_id=200)
    view = await env.learning.queue.next_item(3)
    assert view.item is not None and view.item.margin is not None


async def test_rollback_refuses_a_folder_that_does_not_load(env):
    from storage import repositories as repo

    broken = env.settings.models_path / "v0005"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    async with env.sessionmaker.begin() as session:
        await repo.register_model_version(
            session, "v0005", folder=str(broken), backbone="embedding"
        )
    with pytest.raises(RollbackError, match="v0005 does not load"):
        await env.learning.versions.rollback(1, "v0005")
    assert env.predictor.version == "v0001"
    with pytest.raises(RollbackError, match="no previously active"):
        await env.learning.versions.rollback(1)


async def test_sabotaged_candidate_is_rejected(tmp_path, tiny_model_dir, tiny_training_data):
    texts, labels = tiny_training_data
    shuffled = list(labels)
    random.Random(3).shuffle(shuffled)
    env = await open_env(
        tmp_path,
        tiny_model_dir,
        tiny_training_data,
        base_corpus=lambda: (texts, shuffled),
        promotion_tolerance=0.005,
        promotion_max_recall_drop=0.05,
    )
    try:
        outcome = await env.learning.retrainer.retrain("admin", 1, force=True)
        assert outcome.status == "rejected", retrain_summary(outcome)
        assert env.predictor.version == "v0001"
        assert outcome.gate.candidate_macro_f1 < outcome.gate.active_macro_f1
        from storage import repositories as repo

        async with env.sessionmaker() as session:
            cand = await repo.get_model_version(session, "v0002")
            assert cand.status == "rejected" and "below the active model" in cand.reason
            assert (await repo.get_active_model_version(session)).version == "v0001"
            run = await repo.last_training_run(session)
            assert run.decision == "rejected"
        with pytest.raises(RollbackError, match="rejected by the promotion gate"):
            await env.learning.versions.rollback(1, "v0002")
    finally:
        await env.learning.close()
        await env.predictor.close()
        await env.engine.dispose()


async def test_killed_worker_fails_the_run_and_the_bot_keeps_answering(env):
    from storage import repositories as repo

    killed = []

    async def kill_at_first_epoch(progress):
        if progress.stage == "training" and not killed and env.learning.retrainer.worker_pid:
            killed.append(env.learning.retrainer.worker_pid)
            os.kill(env.learning.retrainer.worker_pid, signal.SIGKILL)

    task = asyncio.create_task(
        env.learning.retrainer.retrain("admin", 1, on_progress=kill_at_first_epoch, force=True)
    )
    answers = 0
    while not task.done():  # the bot answers throughout
        [pred] = await env.predictor.predict(["I love it"])
        assert pred.model_version == "v0001"
        answers += 1
        await asyncio.sleep(0.02)
    outcome = task.result()
    assert killed and answers > 0
    assert outcome.status == "failed" and "killed (SIGKILL)" in outcome.message
    assert env.predictor.version == "v0001"
    async with env.sessionmaker() as session:
        run = await repo.last_training_run(session, status=None)
        assert run.status == "failed" and "killed" in run.error
        assert [v.version for v in await repo.list_model_versions(session)] == ["v0001"]
    assert not (env.settings.models_path / "v0002").exists()
    assert "killed" in "\n".join(retrain_summary(outcome))


async def test_one_run_at_a_time_and_skips_without_new_labels(env):
    skipped = await env.learning.retrainer.retrain("admin", 1)
    assert skipped.status == "skipped" and "force" in retrain_summary(skipped)[0]
    first = asyncio.create_task(env.learning.retrainer.retrain("admin", 1, force=True))
    for _ in range(1000):
        if env.learning.retrainer.training:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(TrainingInProgressError, match="already in progress"):
        await env.learning.retrainer.retrain("admin", 1, force=True)
    with pytest.raises(RollbackError, match="already in progress"):
        await env.learning.versions.rollback(1)
    for _ in range(3000):  # no need to finish this run: stop its worker
        if env.learning.retrainer.worker_pid:
            break
        await asyncio.sleep(0.01)
    os.kill(env.learning.retrainer.worker_pid, signal.SIGTERM)
    outcome = await first
    assert outcome.status == "failed" and "SIGTERM" in outcome.message
    assert not env.learning.retrainer.training


async def test_another_process_running_blocks_and_a_dead_one_is_recovered(env):
    from storage import repositories as repo

    async with env.sessionmaker.begin() as session:
        run = await repo.start_training_run(session, "cli", None)
        run.details = {"pid": os.getpid()}  # alive: counts as running elsewhere
    with pytest.raises(TrainingInProgressError):
        await env.learning.retrainer.retrain("admin", 1, force=True)
    async with env.sessionmaker.begin() as session:
        (await repo.running_training_run(session)).details = {"pid": 2**22 + 12345}
    assert await env.learning.retrainer.recover() == 1
    async with env.sessionmaker() as session:
        assert (await repo.running_training_run(session)) is None


async def test_a_run_left_by_a_dead_process_with_our_own_pid_is_recovered(env):
    # A restarted container's bot often gets the dead one's pid (1): at start-up, with no run
    # of its own, a `running` row carrying its own pid cannot be alive.
    from storage import repositories as repo

    async with env.sessionmaker.begin() as session:
        run = await repo.start_training_run(session, "admin", 1)
        run.details = {"pid": os.getpid()}
    assert await env.learning.retrainer.recover() == 1
    async with env.sessionmaker() as session:
        assert (await repo.running_training_run(session)) is None
        assert (await repo.last_training_run(session, status=None)).status == "failed"


async def test_an_opted_out_annotator_stores_no_queue_label_or_skip(env):
    from storage import repositories as repo

    ids = await env.add_messages(chat_texts(3))
    async with env.sessionmaker.begin() as session:
        await repo.upsert_user(session, 2)
        await repo.set_opted_out(session, 2, True)
    with pytest.raises(LearningError, match="forget"):
        await env.learning.queue.label(2, ids[0], "positive")
    await env.learning.queue.skip(2, ids[1])
    async with env.sessionmaker() as session:
        assert await repo.count_labels(session, 2) == 0
    assert (await env.learning.queue.next_item(2)).remaining == 3  # the skip was not stored


async def test_rescoring_the_queue_goes_chunk_by_chunk(env, monkeypatch):
    # One predictor request is one batch: chunks keep the bot's replies from queueing behind it.
    from bot.learning import served
    from storage import repositories as repo

    ids = await env.add_messages(chat_texts(5))
    monkeypatch.setattr(served, "RESCORE_CHUNK", 2)
    sizes = []
    predict = env.predictor.predict

    async def counting(texts):
        sizes.append(len(texts))
        return await predict(texts)

    monkeypatch.setattr(env.predictor, "predict", counting)
    env.predictor.swap(env.predictor.classifier, "v0002")
    assert await env.learning.served.rescore_queue("v0002") == 5
    assert sizes == [2, 2, 1]
    async with env.sessionmaker() as session:
        for i in ids:
            assert (await repo.latest_prediction(session, i, "v0002")) is not None
    assert await env.learning.served.rescore_queue("v0002") == 0  # nothing left to score


async def test_a_rollback_leaves_no_trace_of_a_forgotten_admin(env):
    from sqlalchemy import select

    from storage import repositories as repo
    from storage.models import AuditLog, ModelVersion

    folder = env.settings.models_path / "v0001"
    async with env.sessionmaker.begin() as session:
        await repo.register_model_version(
            session, "v0002", folder=str(folder), backbone="embedding"
        )
        await repo.activate_model_version(session, "v0002")
    done = await env.learning.versions.rollback(987654321)
    assert (done.from_version, done.to_version) == ("v0002", "v0001")
    async with env.sessionmaker.begin() as session:
        await repo.forget_user(session, 987654321)
    async with env.sessionmaker() as session:
        rows = list(await session.scalars(select(ModelVersion)))
        audit = list(await session.scalars(select(AuditLog)))
    assert not any("987654321" in repr(vars(row)) for row in rows + audit)


async def test_schedule_trigger_needs_enough_new_labels(env):
    from storage import repositories as repo

    items = chat_texts(8)
    await env.add_messages(items)
    await label_all(env, 2, dict(items), limit=3)
    assert await env.learning.retrainer.retrain_if_due() is None  # 3 < RETRAIN_MIN_NEW_LABELS=5
    async with env.sessionmaker() as session:
        assert await repo.list_training_runs(session) == []
    await label_all(env, 2, dict(items))
    outcome = await env.learning.retrainer.retrain_if_due()
    assert outcome is not None and outcome.trigger == "schedule"
    assert outcome.status in ("promoted", "rejected")
    async with env.sessionmaker() as session:
        run = await repo.last_training_run(session)
        assert run.trigger == "schedule" and run.requested_by is None
    assert await env.learning.retrainer.retrain_if_due() is None  # nothing new since


async def test_annotator_agreement(tmp_path, tiny_model_dir, tiny_training_data):
    env = await open_env(tmp_path, tiny_model_dir, tiny_training_data, labels_per_item=2)
    try:
        items = chat_texts(6)
        truth = dict(items)
        await env.add_messages(items)
        assert await label_all(env, 2, truth) == 6
        # With LABELS_PER_ITEM=2 the items stay in the queue for the second annotator.
        view = await env.learning.queue.next_item(3)
        flip = {"positive": "negative", "negative": "positive", "neutral": "neutral"}
        n = 0
        while view.item is not None:
            label = truth[view.item.text] if n % 2 == 0 else flip[truth[view.item.text]]
            view = await env.learning.queue.label(3, view.item.message_id, label)
            n += 1
        assert n == 6
        report = await env.learning.queue.annotators()
        assert report.counts == {2: 6, 3: 6}
        [pair] = report.pairs
        assert (pair.annotator_a, pair.annotator_b, pair.n) == (2, 3, 6)
        assert 0 < pair.observed < 1 and pair.kappa is not None
    finally:
        await env.learning.close()
        await env.predictor.close()
        await env.engine.dispose()


def test_worker_reports_bad_spec(tmp_path: Path):
    """The worker process itself: a spec it cannot read ends with an `error` event, code 1."""
    import subprocess
    import sys

    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "format": 1,
                "train_file": str(tmp_path / "missing.jsonl"),
                "eval_file": "x",
                "labels": ["a", "b"],
                "out_dir": str(tmp_path / "o"),
            }
        )
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "bot.learning.worker", str(spec)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "error" and "missing.jsonl" in events[-1]["error"]


async def test_a_retrain_waits_out_a_rollback_in_progress(env, monkeypatch):
    """A rollback holds the training lock while it checks its target, so no candidate is judged
    against the model being replaced."""
    from storage import repositories as repo

    folder = env.settings.models_path / "v0001"
    async with env.sessionmaker.begin() as session:
        await repo.register_model_version(
            session, "v0002", folder=str(folder), backbone="embedding"
        )
        await repo.activate_model_version(session, "v0002")
    checking, release = asyncio.Event(), asyncio.Event()
    check = type(env.learning.versions)._check_loads_and_scores

    async def slow_check(self, row):
        checking.set()
        await release.wait()
        return await check(self, row)

    monkeypatch.setattr(type(env.learning.versions), "_check_loads_and_scores", slow_check)
    rollback = asyncio.create_task(env.learning.versions.rollback(1))
    await asyncio.wait_for(checking.wait(), timeout=30)
    with pytest.raises(TrainingInProgressError, match="already in progress"):
        await env.learning.retrainer.retrain("admin", 1, force=True)
    release.set()
    done = await rollback
    assert (done.from_version, done.to_version) == ("v0002", "v0001")
    assert not env.learning.retrainer.training


async def test_schedule_backs_off_after_failed_runs(env):
    """Failures in a row push the next scheduled try out (1, 2, 4… intervals); a success or
    enough elapsed time lets it run again."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from storage import repositories as repo
    from storage.models import TrainingRun

    items = chat_texts(8)
    await env.add_messages(items)
    await label_all(env, 2, dict(items))
    env.settings.retrain_interval_minutes = 30
    interval = timedelta(minutes=30)

    async def fail_runs(n: int, ended: datetime) -> None:
        async with env.sessionmaker.begin() as session:
            for _ in range(n):
                run = await repo.start_training_run(session, "schedule")
                await repo.finish_training_run(session, run.id, status="failed", error="boom")
                run.finished_at = ended

    now = datetime.now(UTC)
    await fail_runs(1, now)
    assert await env.learning.retrainer.scheduled_retry_at() == now + interval
    assert await env.learning.retrainer.retrain_if_due() is None  # backing off: no new run row
    async with env.sessionmaker() as session:
        assert len(await repo.list_training_runs(session)) == 1
    await fail_runs(2, now - 2 * interval)  # three in a row, the last two intervals ago
    assert await env.learning.retrainer.scheduled_retry_at() == now + 2 * interval
    assert await env.learning.retrainer.retrain_if_due() is None
    async with env.sessionmaker.begin() as session:  # … and now five intervals ago
        for run in await session.scalars(select(TrainingRun)):
            run.finished_at = now - 5 * interval
    outcome = await env.learning.retrainer.retrain_if_due()
    assert outcome is not None and outcome.status in ("promoted", "rejected")
    assert await env.learning.retrainer.scheduled_retry_at() is None  # a success ends the streak
