"""`sentibot retrain` from the terminal: same run, recorded as trigger `cli`."""

from __future__ import annotations

import asyncio

import pytest

from bot.cli import build_parser, main
from bot.config import get_settings
from tests.learning.conftest import open_env, tiny_options


@pytest.fixture
def cli_env(tmp_path, tiny_model_dir, tiny_training_data, monkeypatch):
    """A database with v0001 active; the CLI reads the same settings from the environment."""

    async def setup():
        env = await open_env(tmp_path, tiny_model_dir, tiny_training_data)
        await env.predictor.close()
        await env.engine.dispose()
        return env

    env = asyncio.run(setup())
    for key, value in {
        "DATA_DIR": env.settings.data_dir,
        "MODEL_DIR": env.settings.models_path,
        "DEVICE": "cpu",
        "PROMOTION_TOLERANCE": "0.2",
        "PROMOTION_MAX_RECALL_DROP": "0.5",
    }.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return env


async def _runs(env):
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker

    engine = create_engine(env.settings.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            runs = await repo.list_training_runs(session)
            audit = await repo.list_audit(session, action="retrain")
            active = await repo.get_active_model_version(session)
            return runs, audit, active.version
    finally:
        await engine.dispose()


def test_cli_retrain_skips_without_labels_then_trains_with_force(
    cli_env, capsys, tiny_training_data
):
    assert main(["retrain"]) == 0  # skipped before any training data is read
    assert "new label" in capsys.readouterr().out
    # The run itself on the tiny corpus (the command takes the options as an argument).
    args = build_parser().parse_args(["retrain", "--force"])
    options = tiny_options(tiny_training_data)
    assert args.handler(args, get_settings(), learning_options=options) == 0
    captured = capsys.readouterr()
    assert "Candidate v0002" in captured.out and "macro-F1: candidate" in captured.out
    assert "epoch" in captured.err  # progress goes to stderr
    runs, audit, active = asyncio.run(_runs(cli_env))
    assert [(r.trigger, r.status) for r in runs] == [("cli", "succeeded")]
    assert audit[0].user_id is None and audit[0].arguments["force"] is True
    assert active == ("v0002" if runs[0].decision == "promoted" else "v0001")


def test_cli_labels_annotators_lists_sources_and_exports_resolved_labels(
    cli_env, capsys, monkeypatch
):
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker

    monkeypatch.setenv("ANNOTATOR_IDS", "2,3")
    assert main(["labels", "annotators"]) == 0
    assert "No labels yet." in capsys.readouterr().out

    async def label() -> None:
        engine = create_engine(cli_env.settings.db_url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                for i in range(3):
                    rec = await repo.record_scored_message(
                        session,
                        chat_id=100,
                        chat_type="private",
                        user_id=100,
                        text=f"text {i}",
                        model_version="v0001",
                        label="positive",
                        confidence=0.6,
                        probs={"negative": 0.1, "neutral": 0.3, "positive": 0.6},
                    )
                    await repo.set_label(session, rec.message_id, 2, "positive", source="queue")
                    await repo.set_label(session, rec.message_id, 3, "negative", source="queue")
        finally:
            await engine.dispose()

    asyncio.run(label())
    assert main(["labels", "annotators"]) == 0
    out = capsys.readouterr().out
    assert "2: 3 labels · reliability" in out and "3: 3 labels · reliability" in out
    assert "agrees with others on 0% of 3 shared labels" in out and "Krippendorff's α" in out
    # Every 1-1 tie is resolved (the model prefers positive): the export has all three.
    assert main(["export", "--out", "labels.csv"]) == 0
    assert "wrote 3 labelled messages" in capsys.readouterr().out
