"""`sentibot db upgrade`, `sentibot export`, `sentibot import` through the real CLI entry point."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from bot import cli


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """Run `sentibot ARGS...` with DATA_DIR in tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_db_upgrade(run_cli, tmp_path):
    code, out, _ = run_cli("db", "upgrade")
    assert code == 0 and "is at migration" in out
    assert (tmp_path / "data" / "sentibot.db").is_file()
    code, _, err = run_cli("db")
    assert code == 2 and "sentibot db upgrade" in err


def test_import_then_export(run_cli, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("text,label\nI love this,positive\nso sad,NEGATIVE\n", encoding="utf-8")
    code, out, _ = run_cli("import", str(src))
    assert code == 0 and "imported 2 rows" in out and "2 new messages" in out
    out_csv = tmp_path / "out.csv"
    code, out, _ = run_cli("export", "--out", str(out_csv))
    assert code == 0 and "wrote 2 labelled messages" in out
    with out_csv.open(encoding="utf-8", newline="") as fh:
        rows = {(r["text"], r["label"], r["sources"]) for r in csv.DictReader(fh)}
    assert rows == {("I love this", "positive", "import"), ("so sad", "negative", "import")}


def test_bad_import_exits_2_and_imports_nothing(run_cli, tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("text,label\ngood,positive\nbad,ecstatic\n", encoding="utf-8")
    code, out, err = run_cli("import", str(src))
    assert code == 2 and out == ""
    assert err.startswith("sentibot: error:") and "line 3" in err and "Traceback" not in err
    assert err.count("\n") == 1
    code, _, err = run_cli("import", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err
    code, _, err = run_cli("import", str(src), "--labels", " , ")
    assert code == 2
    code, _, _ = run_cli("db", "upgrade")
    conn = sqlite3.connect(tmp_path / "data" / "sentibot.db")
    assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    conn.close()


def test_custom_label_list(run_cli, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("text,label\nnice,pos\n", encoding="utf-8")
    code, _, _ = run_cli("import", str(src), "--labels", "pos,neg")
    assert code == 0


def test_export_to_a_folder_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("export", "--out", str(tmp_path))
    assert code == 2 and "folder" in err


def test_unreachable_database_is_one_line(run_cli, monkeypatch, tmp_path):
    (tmp_path / "junk.db").write_bytes(b"junk" * 100)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'junk.db'}")
    code, _, err = run_cli("db", "upgrade")
    assert code == 1 and "DATABASE_URL" in err and err.count("\n") == 1
