"""Data in and out through the CLI: `predict -` / `--file`, `export --format jsonl`,
`import --unlabelled` into the labeling queue."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pytest

from bot import cli


@pytest.fixture
def sentibot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("PREDICT_MAX_BATCH", "2")  # several batches even for a few lines

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def active(sentibot, tiny_model_dir, tmp_path) -> str:
    shutil.copytree(tiny_model_dir, tmp_path / "data" / "models" / "v0001")
    assert sentibot("models", "activate", "v0001")[0] == 0
    return "v0001"


LINES = b"I love this, it is great!\ncaf\xe9 au lait\n\nHorrible service, never again\r\n"


def test_predict_reads_stdin_and_files_as_json_lines(sentibot, active, tmp_path):
    code, out, err = sentibot("predict", "-", stdin=LINES)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in records] == [
        "I love this, it is great!",
        "caf\ufffd au lait",
        "",
        "Horrible service, never again",
    ]
    assert [r["label"] for r in records][::3] == ["positive", "negative"]
    assert {r["model"] for r in records} == {"v0001"}
    assert "answered by v0001 (the active version)" in err
    assert "1 line(s) were not valid UTF-8" in err

    path = tmp_path / "texts.txt"
    path.write_bytes(LINES)
    code, out_file, _ = sentibot("predict", "--file", str(path))
    assert code == 0 and out_file == out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "predict needs texts"),
        (("-", "--file", "x.txt"), "not several"),
        (("--file", "missing.txt"), "no such file"),
        (("--model", "v0042", "hi"), "no model version"),
    ],
)
def test_predict_input_mistakes_are_one_line(sentibot, active, args, words):
    code, out, err = sentibot("predict", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err


def test_export_jsonl_has_every_annotators_label(sentibot, active, tmp_path):
    from bot.config import get_settings
    from bot.console import CONSOLE_CHAT
    from bot.runtime import Runtime
    from bot.service import Author

    src = tmp_path / "labels.csv"
    src.write_text("text,label\nso sad,negative\n", encoding="utf-8")
    assert sentibot("import", str(src))[0] == 0

    async def label_twice() -> None:
        rt = await Runtime.open(get_settings())
        try:
            scored = await rt.service.score_message(CONSOLE_CHAT, Author(0, "console"), "meh")
            await rt.service.record_label(scored.message_id, Author(11, "ann"), "neutral")
            await rt.service.record_label(scored.message_id, Author(12, "bob"), "negative")
        finally:
            await rt.close()

    asyncio.run(label_twice())
    out_file = tmp_path / "export.jsonl"
    code, out, err = sentibot("export", "--format", "jsonl", "--out", str(out_file))
    assert code == 0 and "wrote 2 messages with labels" in out, err
    records = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == ["so sad", "meh"]
    keys = {"message_id", "text", "label", "split", "received_at", "chat_type", "annotations"}
    assert all(set(r) == keys for r in records)
    imported, tie = records
    assert imported["label"] == "negative" and imported["chat_type"] is None
    assert imported["annotations"][0]["annotator"] is None
    assert imported["annotations"][0]["source"] == "import"
    assert tie["label"] is None and tie["chat_type"] == "console"  # 1 vote each: no label
    assert [(a["annotator"], a["label"], a["source"]) for a in tie["annotations"]] == [
        (11, "neutral", "inline"),
        (12, "negative", "inline"),
    ]
    assert all(a["created_at"].endswith("+00:00") for r in records for a in r["annotations"])

    if importlib.util.find_spec("datasets") is not None:  # not a dependency: checked if there
        import datasets

        loaded = datasets.load_dataset("json", data_files=str(out_file), split="train")
        assert loaded.num_rows == 2 and loaded[1]["annotations"][0]["annotator"] == 11


def test_import_unlabelled_fills_the_queue_scored_by_the_active_model(sentibot, active, tmp_path):
    from bot.config import get_settings
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker
    from storage.models import IMPORT_CHAT_ID

    lines = tmp_path / "texts.txt"
    lines.write_text("I am so angry and upset\n\nthe bus is late\nthe bus is late\n", "utf-8")
    code, out, err = sentibot("import", "--unlabelled", str(lines))
    assert code == 0, err
    assert "queued 2 new text(s)" in out and "(0 already there)" in out and "v0001" in out
    table = tmp_path / "texts.csv"
    table.write_text("id,text\n1,the bus is late\n2,What a wonderful day :)\n", "utf-8")
    code, out, err = sentibot("import", "--unlabelled", str(table))
    assert code == 0 and "queued 1 new text(s)" in out and "(1 already there)" in out, err

    async def look() -> tuple[list, object]:
        engine = create_engine(get_settings().db_url)
        try:
            async with create_sessionmaker(engine)() as session:
                rows = await repo.texts_in_chat(session, IMPORT_CHAT_ID)
                item = await repo.next_queue_item(session, 77, active_version=active)
                return sorted(rows), item
        finally:
            await engine.dispose()

    texts, item = asyncio.run(look())
    assert texts == ["I am so angry and upset", "What a wonderful day :)", "the bus is late"]
    assert item is not None and item.text in texts and item.margin is not None

    bad = tmp_path / "bad.csv"
    bad.write_text("message\nhello\n", "utf-8")
    code, _, err = sentibot("import", "--unlabelled", str(bad))
    assert code == 2 and err.count("\n") == 1 and "'text' column" in err
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    code, _, err = sentibot("import", "--unlabelled", str(latin))
    assert code == 2 and "not UTF-8" in err


def test_export_to_a_folder_is_refused(sentibot, tmp_path):
    code, _, err = sentibot("export", "--format", "jsonl", "--out", str(tmp_path))
    assert code == 2 and "is a folder" in err


def test_a_texts_file_and_a_csv_read_the_same(tmp_path):
    from storage.repositories import read_unlabelled

    (tmp_path / "a.txt").write_text("\ufeffone\ntwo\n one \n", "utf-8")
    (tmp_path / "b.csv").write_text('text\none\n"two"\n', "utf-8")
    assert read_unlabelled(tmp_path / "a.txt") == read_unlabelled(Path(tmp_path / "b.csv"))
