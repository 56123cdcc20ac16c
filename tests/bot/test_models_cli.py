"""The operator's day through the real CLI entry point: train from a CSV, see it in `models
list`, activate it, predict with it, roll back, delete; every version's status; the model card
and its charts; refusals as one line with exit code 2."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from pathlib import Path

import pytest

from bot import cli
from tests.bot.charts_util import assert_png

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sentibot(tmp_path, monkeypatch, capsys):
    """`sentibot ARGS...` with a private DATA_DIR; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DATABASE_URL", "MODEL_DIR", "BACKBONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICE", "cpu")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def tiny_csv(tmp_path, tiny_training_data) -> Path:
    path = tmp_path / "tiny.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(zip(*tiny_training_data, strict=True))
    return path


def table(out: str) -> dict[str, list[str]]:
    """`models list` rows by version: [status, backbone, rows, macro-F1, measured on...]."""
    rows = {}
    for line in out.strip().splitlines()[1:]:
        parts = line.split()
        rows[parts[0]] = parts[1:]
    return rows


def audit(tmp_path: Path) -> list[tuple[str, dict]]:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "sentibot.db")
    try:
        rows = conn.execute("SELECT action, arguments FROM audit_log ORDER BY id").fetchall()
    finally:
        conn.close()
    return [(action, json.loads(args)) for action, args in rows]


def test_train_list_activate_predict_rollback_delete(sentibot, tiny_csv, tmp_path):
    models = tmp_path / "data" / "models"
    code, out, err = sentibot("train", "--data", str(tiny_csv), "--epochs", "3")
    assert code == 0, err
    assert "registered as candidate v0001" in out
    assert "sentibot models activate v0001" in out
    assert "epoch 1/3: dev macro-F1" in err and "elapsed" in err
    assert ("stopped early at epoch" in out) or ("ran all 3 epochs" in out)
    assert (models / "v0001" / "README.md").is_file()

    code, out, _ = sentibot("models", "list")
    assert code == 0
    assert table(out)["v0001"][:2] == ["candidate", "embedding"]
    assert "dev split of the training data" in out and "unreliable" in out

    code, out, err = sentibot("models", "activate", "v0001")
    assert code == 0, err
    assert "Activated: v0001 is now active" in out and "eval macro-F1" in out

    code, out, err = sentibot("predict", "I love this, it is great!")
    assert code == 0 and out.startswith("positive ")
    assert "answered by v0001 (the active version)" in err

    code, out, err = sentibot("train", "--data", str(tiny_csv), "--epochs", "4", "--seed", "1")
    assert code == 0 and "registered as candidate v0002" in out
    code, out, _ = sentibot("predict", "--json", "hello")
    assert json.loads(out)["model"] == "v0001"  # a candidate is not served until activated

    code, out, err = sentibot("models", "activate", "v0002")
    assert code == 0 and "v0001 → v0002" in out, err
    rows = table(sentibot("models", "list")[1])
    assert rows["v0002"][0] == "active" and rows["v0001"][0] == "retired"
    code, out, _ = sentibot("predict", "--json", "hello")
    assert json.loads(out)["model"] == "v0002"

    code, out, err = sentibot("models", "rollback")
    assert code == 0 and "v0002 → v0001" in out, err
    assert json.loads(sentibot("predict", "--json", "hi")[1])["model"] == "v0001"

    code, out, err = sentibot("models", "delete", "v0001")
    assert code == 2 and err.count("\n") == 1
    assert "v0001 is the active model" in err and "sentibot models activate" in err
    code, out, err = sentibot("models", "delete", "v0002")
    assert code == 0, err
    assert "deleted v0002: its folder and registry row" in out
    assert "no earlier active version left for /rollback" in out
    assert not (models / "v0002").exists()
    assert "v0002" not in table(sentibot("models", "list")[1])
    assert [action for action, _ in audit(tmp_path)] == [
        "activate",
        "activate",
        "rollback",
        "delete",
    ]
    assert audit(tmp_path)[1][1] == {"from": "v0001", "to": "v0002"}


def test_unregistered_folders_and_paths_are_listed_and_activated(
    sentibot, tiny_model_dir, tmp_path
):
    models = tmp_path / "data" / "models"
    shutil.copytree(tiny_model_dir, models / "v0003")
    (models / "v0007").mkdir()  # not a model folder
    code, out, _ = sentibot("models", "list")
    rows = table(out)
    assert rows["v0003"][0] == "unregistered" and rows["v0007"][0] == "unregistered"
    assert "v0007: " in out and "config.json" in out  # why it cannot be used

    code, out, err = sentibot("models", "activate", "v0003")
    assert code == 0, err
    assert table(sentibot("models", "list")[1])["v0003"][0] == "active"

    outside = tmp_path / "elsewhere" / "v0010"
    shutil.copytree(tiny_model_dir, outside)
    code, out, err = sentibot("models", "activate", str(outside))
    assert code == 0 and "v0003 → v0010" in out, err
    code, out, err = sentibot("models", "delete", "v0003")
    assert code == 0 and "/rollback without a version now goes back to" not in out
    code, out, err = sentibot("models", "rollback")
    assert code == 2 and "no previously active version" in err


def test_unknown_and_rejected_versions_are_one_line(sentibot, tiny_model_dir, tmp_path):
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker

    models = tmp_path / "data" / "models"
    for name in ("v0001", "v0002"):
        shutil.copytree(tiny_model_dir, models / name)
    assert sentibot("models", "activate", "v0001")[0] == 0
    assert sentibot("models", "activate", "v0002")[0] == 0
    assert sentibot("models", "activate", "v0001")[0] == 0

    async def reject() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'sentibot.db'}")
        async with create_sessionmaker(engine).begin() as session:
            await repo.set_model_status(session, "v0002", "rejected", reason="worse")
        await engine.dispose()

    asyncio.run(reject())
    for args, words in [
        (("models", "activate", "v0002"), ("rejected", "--force")),
        (("models", "activate", "v0009"), ("no model version", "v0009")),
        (("models", "show", "v0009"), ("v0009",)),
        (("models", "activate", "v0001"), ("already the active model",)),
    ]:
        code, _, err = sentibot(*args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert all(word in err for word in words), err
    code, out, err = sentibot("models", "activate", "v0002", "--force")
    assert code == 0 and "v0001 → v0002" in out, err


def test_show_prints_the_card_and_draws_the_dev_curve(sentibot, tiny_csv, tmp_path):
    assert sentibot("train", "--data", str(tiny_csv), "--epochs", "4")[0] == 0
    code, out, _ = sentibot("models", "show", "v0001")
    assert code == 0
    assert out.startswith("v0001: candidate")
    for section in ("## Intended use", "## Data", "## Metrics", "## Training", "## Limitations"):
        assert section in out
    assert str(tiny_csv) in out
    code, out, _ = sentibot("models", "show", "v0001", "--json")
    card = json.loads(out)
    assert card["kind"] == "train" and len(card["training"]["dev_curve"]) >= 1
    plot = tmp_path / "curve.png"
    code, _, err = sentibot("models", "show", "v0001", "--plot", str(plot))
    assert code == 0 and f"chart written to {plot}" in err
    assert_png(plot.read_bytes())


def test_list_plot_and_json(sentibot, tiny_csv, tmp_path):
    for seed in ("1", "2"):
        assert sentibot("train", "--data", str(tiny_csv), "--epochs", "2", "--seed", seed)[0] == 0
    plot = tmp_path / "versions.png"
    code, out, err = sentibot("models", "list", "--json", "--plot", str(plot))
    assert code == 0, err
    listed = json.loads(out)
    assert [v["version"] for v in listed] == ["v0002", "v0001"]
    assert listed[0]["measured_on"] == "dev split of the training data"
    assert listed[0]["reliable"] is False and listed[0]["status"] == "candidate"
    assert_png(plot.read_bytes())
    code, _, err = sentibot("models", "list", "--plot", str(tmp_path))
    assert code == 2 and "is a folder" in err


def test_eval_uses_the_active_model_and_draws_the_confusion_matrix(sentibot, tiny_csv, tmp_path):
    assert sentibot("train", "--data", str(tiny_csv), "--epochs", "2")[0] == 0
    assert sentibot("train", "--data", str(tiny_csv), "--epochs", "2", "--seed", "4")[0] == 0
    assert sentibot("models", "activate", "v0001")[0] == 0
    plot = tmp_path / "confusion.png"
    code, out, err = sentibot("eval", "--data", str(tiny_csv), "--plot", str(plot))
    assert code == 0, err
    assert out.startswith(f"model v0001 (the active version) on {tiny_csv}:")
    assert_png(plot.read_bytes())
    code, out, _ = sentibot("eval", "--data", str(tiny_csv), "--json", "--model", "v0002")
    assert json.loads(out)["model"] == "v0002"
