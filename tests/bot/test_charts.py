"""Charts: the figures hold one bar or point per item (inspected before saving), and the PNGs
decode; /mood's trend fills empty hours and days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import charts
from bot.trend import MAX_DAILY_POINTS, TrendPoint, build_trend
from classifier.card_text import EvalSet
from tests.bot.charts_util import assert_png

LABELS = ["negative", "neutral", "positive"]


def _lines(axes) -> list:
    return [line for line in axes.get_lines() if line.get_linestyle() != "--"]


def test_mood_chart_has_a_bar_per_label_and_a_line_per_label_over_the_days():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    trend = [
        TrendPoint(start + timedelta(days=i), {"negative": i, "neutral": 1, "positive": 2})
        for i in range(7)
    ]
    figure = charts.mood_figure({"negative": 3, "neutral": 5, "positive": 9}, "Mood", trend)
    bars_axes, trend_axes = figure.axes
    assert len(bars_axes.patches) == 3
    assert [bar.get_height() for bar in bars_axes.patches] == [3, 5, 9]
    lines = _lines(trend_axes)
    assert [line.get_label() for line in lines] == LABELS
    assert all(len(line.get_xdata()) == 7 for line in lines)
    assert list(lines[0].get_ydata()) == list(range(7))
    assert_png(charts.png(figure))
    alone = charts.mood_figure({"negative": 1, "positive": 0}, "Mood")  # no trend: bars only
    assert len(alone.axes) == 1 and len(alone.axes[0].patches) == 2


def _point(version: str, f1: float, key: str, status: str = "retired", n: int = 500):
    evalset = EvalSet(f"set {key}", n, key)
    return charts.VersionPoint(version, f1, key, evalset.short(), status, evalset.reliable)


def test_versions_chart_marks_where_the_eval_set_changed():
    points = [
        _point("v0001", 0.61, "a"),
        _point("v0002", 0.63, "a"),
        _point("v0003", 0.58, "b", "rejected"),
        _point("v0004", 0.66, "b", "active", n=20),
    ]
    figure = charts.versions_figure(points, "Macro-F1 by version")
    (axes,) = figure.axes
    assert [round(bar.get_height(), 2) for bar in axes.patches] == [0.61, 0.63, 0.58, 0.66]
    dashed = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [1.5, 1.5]
    assert axes.patches[3].get_hatch() == "//" and not axes.patches[0].get_hatch()  # n=20
    assert [t.get_text() for t in axes.get_xticklabels()] == ["v0001", "v0002", "v0003", "v0004"]
    assert_png(charts.png(figure))


def test_version_points_skip_versions_without_figures():
    class Row:
        def __init__(self, version, f1, evalset):
            self.version, self.eval_macro_f1, self.eval_set, self.status = (
                version,
                f1,
                evalset,
                "retired",
            )

    evalset = EvalSet("eval split", 100, "k")
    points = charts.version_points([Row("v1", 0.5, evalset), Row("v2", None, evalset)])
    assert [p.version for p in points] == ["v1"] and points[0].eval_name == evalset.short()


def test_dev_curve_has_a_point_per_epoch_and_marks_the_best():
    curve = [{"epoch": i, "dev_macro_f1": f} for i, f in enumerate([0.5, 0.6, 0.58, 0.57], 1)]
    figure = charts.dev_curve_figure(curve, 2, "v0003")
    (axes,) = figure.axes
    line, best = axes.get_lines()
    assert list(line.get_xdata()) == [1, 2, 3, 4] and list(line.get_ydata())[1] == 0.6
    assert list(best.get_xdata()) == [2] and list(best.get_ydata()) == [0.6]
    assert_png(charts.dev_curve_png(curve, 2, "v0003"))


def test_confusion_matrix_png():
    report = {"labels": LABELS, "confusion": [[3, 1, 0], [0, 4, 1], [0, 0, 5]]}
    figure = charts.confusion_figure(report, "v0001")
    assert len(figure.axes[0].texts) == 9
    assert_png(charts.confusion_png(report, "v0001"))


def test_trend_fills_the_empty_days_and_hours():
    now = datetime(2026, 12, 8, 15, 30, tzinfo=UTC)
    rows = [("2026-12-02", "negative", 2), ("2026-12-02", "positive", 1), ("2026-12-05", "x", 1)]
    week = build_trend(rows, LABELS, since=now - timedelta(days=7), now=now)
    assert [p.start.day for p in week] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert week[1].counts == {"negative": 2, "neutral": 0, "positive": 1}
    assert week[4].counts["x"] == 1 and week[4].counts["negative"] == 0  # an older model's label
    hours = build_trend(
        [("2026-12-08 10", "neutral", 3)],
        LABELS,
        since=now - timedelta(hours=24),
        now=now,
        hourly=True,
    )
    assert len(hours) == 25 and hours[19].counts["neutral"] == 3 and hours[19].start.hour == 10
    assert build_trend([], LABELS, since=None, now=now) == []


def test_a_long_history_is_drawn_by_week():
    now = datetime(2026, 12, 8, tzinfo=UTC)
    rows = [("2026-01-05", "positive", 4), ("2026-01-06", "positive", 1)]
    weeks = build_trend(rows, LABELS, since=None, now=now)
    assert len(weeks) < MAX_DAILY_POINTS and weeks[0].start.weekday() == 0
    assert weeks[0].counts["positive"] == 5 and sum(p.total for p in weeks) == 5
