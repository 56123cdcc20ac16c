"""/status names the rows its figures were measured on and flags small sets; /mood's trend."""

from __future__ import annotations

from bot import texts
from bot.console import CONSOLE_CHAT, CONSOLE_USER, plain
from classifier.card_text import describe_eval


async def test_status_says_what_the_eval_set_is_and_flags_a_small_one(runtime):
    text = plain(texts.status_text(await runtime.service.status()))
    assert "Model: v0001 (embedding)" in text
    # The tiny model's figures come from 3 dev rows of its training file.
    assert "Measured on the dev split of the training data: 3 rows, 0 from this bot's users" in text
    assert "⚠️ Unreliable: fewer than 50 rows" in text


def test_eval_set_lines_count_the_bots_own_rows():
    metrics = {"measured_on": "eval", "n": 1095, "macro_f1": 0.61}
    manifest = {
        "kind": "retrain",
        "eval": {
            "rows": 1095,
            "rows_per_source": {"bootstrap": 1080, "inline": 9, "queue": 4, "import+queue": 2},
            "sha256": "abc",
        },
    }
    (line,) = texts.eval_set_lines(describe_eval(metrics, manifest))
    assert line == (
        "Measured on the eval split: 1,095 rows, 15 from this bot's users, "
        "1,080 from the bootstrap corpus"
    )
    boot = describe_eval(metrics, {"kind": "bootstrap", "bootstrap": {"rows": 40000}})
    assert texts.eval_set_lines(boot) == [
        "Measured on the bootstrap eval slice: 1,095 rows, 0 from this bot's users"
    ]
    on_train = describe_eval({"measured_on": "dev", "n": 60}, {"dev_source": "train"})
    assert texts.eval_set_lines(on_train)[1] == (
        "⚠️ Unreliable: measured on the training data itself"
    )


async def test_mood_has_a_trend_over_the_window(runtime):
    for text in ("I love this, it is great!", "What an awful day :(", "Great job team"):
        await runtime.service.score_message(CONSOLE_CHAT, CONSOLE_USER, text)
    week = await runtime.service.mood(CONSOLE_CHAT.id, "7d")
    assert len(week.trend) == 8  # a point per day, today included
    assert sum(point.total for point in week.trend) == week.total == 3
    assert week.trend[-1].counts == week.counts
    day = await runtime.service.mood(CONSOLE_CHAT.id, "24h")
    assert len(day.trend) == 25 and sum(point.total for point in day.trend) == 3
    everything = await runtime.service.mood(CONSOLE_CHAT.id)
    assert len(everything.trend) == 1
