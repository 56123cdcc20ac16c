"""The operator's commands as real processes: progress lines when piped (a frozen-BERT train),
the console chat following `sentibot models activate`, undecodable input, bad settings."""

from __future__ import annotations

import csv
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MODEL_DIR")}
    env.update(PYTHONPATH=str(ROOT), DATA_DIR=str(data_dir), DEVICE="cpu", TELEGRAM_BOT_TOKEN="")
    env.update(extra)
    return env


def sentibot(cwd: Path, env: dict[str, str], *args: str, stdin: bytes = b""):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


# --- progress when stderr is not a terminal ------------------------------------------------------
@pytest.mark.slow
def test_frozen_bert_train_logs_progress_with_eta_when_piped(tmp_path, tiny_training_data):
    pytest.importorskip("transformers")
    from tests.bert_fixtures import write_tiny_bert

    texts, labels = tiny_training_data
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})
    bert = write_tiny_bert(tmp_path / "bert", words=words)
    data = tmp_path / "tiny.csv"
    # 720 distinct rows: several of the encoder's progress steps (256 texts each on a CPU).
    rows = [(f"{t} {i}", y) for i in range(20) for t, y in zip(texts, labels, strict=True)]
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    env = environment(
        tmp_path / "data",
        BERT_PATH=str(bert),
        BERT_MODE="frozen",
        PROGRESS_LOG_SECONDS="0",  # every 10% of every step: these steps are short
    )
    proc = sentibot(
        tmp_path, env, "train", "--data", str(data), "--backbone", "bert", "--epochs", "2"
    )
    err, out = proc.stderr.decode(), proc.stdout.decode()
    assert proc.returncode == 0, err
    assert "\r" not in err  # log lines, not a terminal's progress bar
    progress = [line for line in err.splitlines() if "classifier.progress" in line]
    encoding = [line for line in progress if "frozen BERT: encoding texts" in line]
    assert len(encoding) >= 3, progress
    assert re.search(r"256/\d+ texts \(\d+%\), [\d.]+ s elapsed, ETA [\d.]+ s$", encoding[0])
    assert re.search(r"done, [\d,]+ texts in [\d.]+ s$", encoding[-1])
    assert any("reading tiny.csv: done" in line for line in progress)
    assert any(re.search(r"epoch 1/2: \d+/\d+ batches", line) for line in progress)
    assert re.search(r"epoch 1/2: dev macro-F1 [\d.]+.*elapsed, ETA", err)
    assert "ran all 2 epochs" in out or "stopped early at epoch" in out
    assert "registered as candidate v0001" in out


# --- the console chat follows a version activated elsewhere ---------------------------------------
class Console:
    """`sentibot chat` with pipes; `say` writes a line, `read` waits for lines of output."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )

    def say(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read(self, count: int = 1, timeout: float = 120) -> list[str]:
        lines, deadline = [], time.monotonic() + timeout
        while len(lines) < count:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            assert ready, f"no output from the console after {timeout} s; got {lines}"
            line = self.proc.stdout.readline()
            assert line, f"the console ended: {self.proc.stderr.read().decode()[-2000:]}"
            lines.append(line.decode().rstrip("\n"))
        return lines

    def close(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.mark.slow
def test_the_console_chat_answers_with_a_version_activated_elsewhere(tmp_path, tiny_model_dir):
    env = environment(tmp_path / "data")
    models = tmp_path / "data" / "models"
    shutil.copytree(tiny_model_dir, models / "v0001")
    console = Console(tmp_path, env)
    try:
        console.say("I love this, it is great!")
        assert "positive ·" in console.read()[0]

        shutil.copytree(tiny_model_dir, models / "v0002")
        done = sentibot(tmp_path, env, "models", "activate", "v0002")
        assert done.returncode == 0, done.stderr.decode()
        assert "v0001 → v0002" in done.stdout.decode()
        time.sleep(1.1)  # the console checks at most once a second

        console.say("What an awful day :(")
        notice, answer = console.read(2)
        assert notice == "(now answering with v0002: it was activated elsewhere)"
        assert "negative ·" in answer

        back = sentibot(tmp_path, env, "models", "rollback")
        assert back.returncode == 0 and "v0002 → v0001" in back.stdout.decode()
        time.sleep(1.1)
        console.say("The report has ten pages")
        assert console.read(2)[0] == "(now answering with v0001: it was activated elsewhere)"
    finally:
        assert console.close() == 0


@pytest.mark.slow
def test_console_reads_bytes_that_are_not_utf8_and_goes_on(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir, tmp_path / "data" / "models" / "v0001")
    proc = sentibot(
        tmp_path, environment(tmp_path / "data"), "chat", stdin=b"caf\xe9\nI love it!\n"
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2 and all(" · " in line for line in lines), lines
    assert "Traceback" not in proc.stderr.decode()


# --- bad settings: one line, exit 2, naming the setting and the fix -------------------------------
@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        (
            "DATABASE_URL",
            "sqlite:///x.db",
            ["DATABASE_URL=sqlite:///x.db", "sqlite+aiosqlite:///x.db"],
        ),
        (
            "DATABASE_URL",
            "postgres://bot:s3cret@db/sentibot",
            ["postgresql+asyncpg://bot:***@db/sentibot", "pip install 'sentibot[postgres]'"],
        ),
        ("DATABASE_URL", "postgresql://db/sentibot", ["postgresql+asyncpg://db/sentibot"]),
        ("DATABASE_URL", "sentibot.db", ["is not a database URL", "sqlite+aiosqlite:///"]),
        ("LOG_LEVEL", "verbose", ["bad setting LOG_LEVEL='verbose'", "'DEBUG'", ".env"]),
        ("PREDICT_MAX_BATCH", "0", ["bad setting PREDICT_MAX_BATCH='0'", "greater than"]),
        ("DEVICE", "gpu", ["DEVICE must be auto, cpu, cuda or cuda:N"]),
        ("ADMIN_IDS", "ada", ["not a Telegram user id: 'ada'"]),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(setting, value, words, tmp_path, monkeypatch, capsys):
    from bot import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(setting, value)
    assert cli.main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sentibot: error: "), err
    for word in words:
        assert word in err, err
    assert "s3cret" not in err


def test_missing_asyncpg_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    from bot import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bot@localhost/sentibot")
    assert cli.main(["predict", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs asyncpg" in err and "pip install 'sentibot[postgres]'" in err
