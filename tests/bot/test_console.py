"""`sentibot chat`: the console mode, driven through a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.console import run_console
from bot.runtime import Runtime
from storage.models import Label, Message

SCRIPT = """I love this, it is great!
/label negative
/mood
/status
/label ecstatic
/frobnicate
What an awful day :(
/quit
never read
"""


async def test_console_scores_labels_and_reports(make_settings):
    settings = make_settings()
    out = io.StringIO()
    assert await run_console(settings, io.StringIO(SCRIPT), out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "😊 positive · " + lines[0].split(" · ")[1]
    assert lines[1] == "✓ you said: negative"
    assert any("Mood in this chat" in line for line in lines)
    assert any(line.startswith("Model: v0001") for line in lines)
    assert any("Usage: /label <negative|neutral|positive>" in line for line in lines)
    assert any("Unknown command /frobnicate" in line for line in lines)
    assert "negative" in lines[-1]
    assert not any("<b>" in line for line in lines)  # HTML is stripped for the terminal
    rt = await Runtime.open(settings)
    try:
        async with rt.sessionmaker() as session:
            messages = (await session.execute(select(Message.chat_id, Message.text))).all()
            labels = (await session.execute(select(Label.label))).scalars().all()
    finally:
        await rt.close()
    assert [tuple(m) for m in messages] == [
        (0, "I love this, it is great!"),
        (0, "What an awful day :("),
    ]
    assert labels == ["negative"]


def _sentibot(settings, cwd: Path, *args: str, stdin: str = "", token: str = ""):
    """Run `python -m bot ARGS` in a fresh process with these settings and `stdin` piped in."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATA_DIR": str(settings.data_dir),
        "MODEL_DIR": str(settings.models_path),
        "DEVICE": "cpu",
        "TELEGRAM_BOT_TOKEN": token,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow  # a fresh interpreter imports torch: seconds
def test_console_through_a_real_pipe(make_settings, tmp_path: Path):
    stdin = "Terrible food, rude staff\n/label neutral\n"
    proc = _sentibot(make_settings(), tmp_path, "chat", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert "negative ·" in lines[0] and lines[0].endswith("%")
    assert lines[1] == "✓ you said: neutral"


@pytest.mark.slow  # a fresh interpreter imports torch: seconds
def test_up_without_token_runs_the_console(make_settings, tmp_path: Path):
    proc = _sentibot(make_settings(), tmp_path, "up", stdin="What a wonderful day :)\n")
    assert proc.returncode == 0, proc.stderr
    assert "console chat" in proc.stderr
    assert "positive ·" in proc.stdout


def test_run_without_or_with_bad_token_is_one_line(make_settings, tmp_path: Path):
    for token in ("", "12345:nope"):
        proc = _sentibot(make_settings(), tmp_path, "run", token=token)
        assert proc.returncode == 2  # a bad setting
        assert proc.stderr.count("\n") == 1 and "TELEGRAM_BOT_TOKEN" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
