"""`classifier.progress`: a tqdm bar on a terminal, log lines with elapsed time and ETA elsewhere,
nothing for short steps."""

from __future__ import annotations

import re

import pytest

import classifier.progress as progress
from classifier.progress import format_seconds


@pytest.fixture(autouse=True)
def fresh_config(monkeypatch):
    monkeypatch.setattr(progress, "_config", progress._Config(bar=False))


def run_steps(total: int, **kwargs) -> None:
    with progress.progress("counting", total, unit="things", **kwargs) as bar:
        for _ in range(total):
            bar.update()


def test_log_lines_every_tenth_with_elapsed_and_eta(caplog):
    progress.configure(every_seconds=0)  # also short steps
    with caplog.at_level("INFO", logger="classifier.progress"):
        run_steps(50)
    lines = caplog.messages
    assert len(lines) == 10  # 10% … 90%, then the closing line
    assert lines[0].startswith("counting: 5/50 things (10%), ")
    assert re.search(r"elapsed, ETA \d", lines[0])
    assert lines[-1].startswith("counting: done, 50 things in ")


def test_short_steps_say_nothing_by_default(caplog):
    with caplog.at_level("INFO", logger="classifier.progress"):
        run_steps(1000)
    assert caplog.messages == []


def test_a_long_step_logs_after_the_quiet_period(caplog, monkeypatch):
    clock = iter(range(0, 10_000, 1))  # one second per call
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    with caplog.at_level("INFO", logger="classifier.progress"):
        run_steps(100)
    assert 9 <= len(caplog.messages) <= 11
    assert "ETA" in caplog.messages[0] and caplog.messages[-1].startswith("counting: done")


def test_unknown_total_logs_counts(caplog):
    progress.configure(every_seconds=0)
    with caplog.at_level("INFO", logger="classifier.progress"):
        run_steps_unknown = progress.progress("streaming", None, unit="rows")
        run_steps_unknown.update(7)
        run_steps_unknown.close()
    assert caplog.messages[-1].startswith("streaming: done, 7 rows in ")


def test_silenced_by_the_caller_or_by_configure(caplog):
    progress.configure(every_seconds=0)
    with caplog.at_level("INFO", logger="classifier.progress"):
        run_steps(20, enabled=False)
        progress.configure(enabled=False)
        run_steps(20)
    assert caplog.messages == []


def test_a_bar_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    progress.configure(bar=True)
    run_steps(30)
    assert "counting" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.44, "0.4 s"), (12.4, "12 s"), (125, "2 min 05 s"), (3720, "1 h 02 min")],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_epoch_clock_eta_uses_the_epochs_own_duration(monkeypatch):
    times = iter([0.0, 30.0, 40.0, 50.0])  # 30 s of data preparation, then 10 s per epoch
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(times))
    clock = progress.EpochClock()
    assert clock.tick(1, 5, 0.5) == (30.0, 120.0, True)  # nothing better to go by yet
    assert clock.tick(2, 5, 0.4) == (40.0, 30.0, False)
    assert clock.tick(3, 5, 0.6) == (50.0, 20.0, True)
