"""Callback data parsing and message texts (escaping, length limits)."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot import keyboards, texts
from bot.learning.agreement import PairAgreement
from bot.learning.results import AnnotatorReport, LastRun, LearningStatus
from bot.service import MoodReport, StatusReport


def test_feedback_data_round_trip_and_limits():
    data = keyboards.feedback_data(123456789, "positive")
    assert data == "fb:123456789:positive"
    assert keyboards.parse_feedback(data) == keyboards.Feedback(123456789, "positive")
    with pytest.raises(ValueError):
        keyboards.feedback_data(1, "x" * 70)


@pytest.mark.parametrize(
    "data",
    [None, "", "fb:", "fb:1", "fb:x:positive", "fb:1:-positive", "fb:1:pos itive", "fb:-1:positive",
     "fb:1:" + "p" * 33, "fb:1:positive:extra", "xfb:1:positive", "fb:" + "1" * 19 + ":positive"],
)  # fmt: skip
def test_malformed_feedback_data_parses_to_none(data):
    assert keyboards.parse_feedback(data) is None


def test_forget_data_names_the_asker():
    markup = keyboards.forget_keyboard(42)
    datas = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert datas == ["forget:yes:42", "forget:no:42"]
    assert keyboards.parse_forget("forget:yes:42") == keyboards.ForgetChoice(True, 42)
    assert keyboards.parse_forget("forget:maybe:42") is None


def test_keyboard_has_one_button_per_label_containing_the_word():
    markup = keyboards.feedback_keyboard(7, ["negative", "neutral", "positive"])
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.callback_data for b in buttons] == [
        "fb:7:negative",
        "fb:7:neutral",
        "fb:7:positive",
    ]
    assert all(
        label in b.text
        for b, label in zip(buttons, ["negative", "neutral", "positive"], strict=True)
    )


def test_score_line_format():
    assert texts.score_line("positive", 0.8712) == "😊 positive · 87%"
    assert texts.score_line("negative", 1.0) == "😞 negative · 100%"
    assert texts.score_line("<odd>", 0.5) == "🏷 &lt;odd&gt; · 50%"


def test_fit_never_exceeds_the_limit_or_cuts_an_entity():
    text = texts.esc("a&b " * 2000)
    cut = texts.fit(text)
    assert len(cut) <= 4096 and cut.endswith("…")
    assert not cut[:-1].endswith(("&", "&a", "&am", "&amp"))
    assert texts.fit("short") == "short"


def test_fit_keeps_whole_lines_and_tags():
    lines = "\n".join(f"<b>{i}</b> {texts.esc('x<y')}" for i in range(1000))
    cut = texts.fit(lines)
    assert len(cut) <= 4096 and cut.endswith("\n…")
    body = cut[: -len("\n…")]
    assert body.count("<b>") == body.count("</b>") > 100
    one_line = "<i>" + "z" * 4090 + "</i><b>tail</b>"  # no line end: cut before the tag
    assert not texts.fit(one_line)[:-1].endswith(("<", "</", "</i", "<b"))


def test_quote_escapes_and_shortens():
    assert texts.quote("<b>x</b>", limit=300) == "&lt;b&gt;x&lt;/b&gt;"
    assert len(texts.quote("y" * 1000, limit=50)) == 50


def test_mood_and_status_texts():
    report = MoodReport("24h", {"negative": 1, "neutral": 0, "positive": 3})
    text = texts.mood_text(report)
    assert "4 message(s)" in text and "positive: 3 (75%)" in text and "last 24 hours" in text
    assert "No scored messages" in texts.mood_text(MoodReport("all", {"negative": 0}))
    status = StatusReport("v0002", "embedding", {"macro_f1": 0.71234, "accuracy": 0.8, "n": 50},
                          10, 4, 3, 2)  # fmt: skip
    text = texts.status_text(status)
    assert "v0002" in text and "0.712" in text and "n=50" in text and "Learning" not in text
    assert "none active" in texts.status_text(StatusReport(None, None, None, 0, 0, 0, 0))


def test_learning_status_text_escapes_names_and_puts_kappa_in_words():
    names = {1: ("ann", None), 2: (None, "<Bob>")}
    pair = PairAgreement(1, 2, n=6, observed=4 / 6, kappa=0.5)
    report = AnnotatorReport({1: 6, 2: 6, 3: 1}, [pair], names)
    run = LastRun(datetime(2024, 5, 1, 12, 30), "schedule", "v0003", "rejected")
    learning = LearningStatus(True, run, 30, 5, report)
    status = StatusReport("v0002", "embedding", None, 10, 4, 3, 2)
    text = texts.status_text(status, learning)
    lines = text.split("<b>Learning</b>\n")[1].splitlines()
    assert lines == [
        "a training run is in progress",
        "last training run: 2024-05-01 12:30 UTC (schedule) v0003 rejected",
        "scheduled retraining every 30 min with ≥ 5 new labels",
        "labels per annotator: @ann: 6, &lt;Bob&gt; (2): 6, 3: 1",
        "agreement @ann ↔ &lt;Bob&gt; (2): Cohen's κ 0.50 (moderate) on 6 shared items, "
        "67% identical",
    ]
    off = LearningStatus(False, None, 0, 5, None)
    assert texts.learning_lines(off) == ["scheduled retraining is off (RETRAIN_INTERVAL_MINUTES=0)"]
