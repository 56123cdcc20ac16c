"""Charts as PNG bytes (matplotlib's Agg backend, no pyplot global state): /mood's distribution
and trend, a confusion matrix (retrain reports, `sentibot eval --plot`), macro-F1 by version
(/models, `sentibot models list --plot`) and a model's dev curve (`sentibot models show --plot`).

Each chart has a `*_figure` function (a matplotlib `Figure`, which tests inspect) and a `*_png`
one. Rendering takes tens of milliseconds, so the async helpers run it in a worker thread: the
event loop keeps serving other chats meanwhile. matplotlib is imported inside the functions on
purpose: it costs about a second and tens of MB, and most bot processes never draw a chart.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

COLORS = {"negative": "#d9534f", "neutral": "#9e9e9e", "positive": "#5cb85c"}
OTHER_COLOR = "#5b8def"
STATUS_COLORS = {"active": "#2e7d32", "rejected": "#c62828", "candidate": "#f9a825"}


def _figure(width: float, height: float) -> Any:
    """A figure on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _color(label: str) -> str:
    return COLORS.get(label, OTHER_COLOR)


# --- /mood ---------------------------------------------------------------------------------------
def mood_figure(counts: Mapping[str, int], title: str, trend: Sequence[Any] = ()) -> Any:
    """Bars of message counts per label (with percentages); beside them, with a trend, one
    line per label over the window's hours or days (`bot.trend.TrendPoint`s)."""
    figure = _figure(10 if trend else 6, 3.8)
    axes = figure.add_subplot(1, 2 if trend else 1, 1)
    labels = list(counts)
    values = [counts[label] for label in labels]
    total = sum(values) or 1
    bars = axes.bar(labels, values, color=[_color(label) for label in labels])
    for bar, value in zip(bars, values, strict=True):
        axes.annotate(
            f"{value} ({round(100 * value / total)}%)",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    axes.set_title(title)
    axes.set_ylabel("messages")
    axes.set_ylim(0, max(values + [1]) * 1.2)
    axes.spines[["top", "right"]].set_visible(False)
    if trend:
        _trend_axes(figure.add_subplot(1, 2, 2), labels, trend)
    return figure


def _trend_axes(axes: Any, labels: list[str], trend: Sequence[Any]) -> None:
    times = [point.start for point in trend]
    for label in labels:
        values = [point.counts.get(label, 0) for point in trend]
        axes.plot(times, values, marker="o", markersize=3, color=_color(label), label=label)
    step = times[1] - times[0] if len(times) > 1 else timedelta(days=1)
    if len(times) == 1:  # one day: give the axis a width
        axes.set_xlim(times[0] - step, times[0] + step)
    hourly = step <= timedelta(hours=1)
    axes.set_title("per hour" if hourly else "per day" if step <= timedelta(days=1) else "per week")
    axes.set_ylabel("messages")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def mood_chart_png(counts: Mapping[str, int], title: str, trend: Sequence[Any] = ()) -> bytes:
    return png(mood_figure(counts, title, trend))


async def render_mood_chart(
    counts: Mapping[str, int], title: str, trend: Sequence[Any] = ()
) -> bytes:
    """`mood_chart_png` off the event loop."""
    return await asyncio.to_thread(mood_chart_png, dict(counts), title, tuple(trend))


# --- confusion matrix ----------------------------------------------------------------------------
def confusion_figure(report: dict[str, Any], title: str) -> Any:
    """A confusion-matrix heat map (rows: true label, columns: predicted)."""
    labels = list(report.get("restricted_to") or report["labels"])
    matrix = report["confusion"]
    figure = _figure(4.6, 4.0)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            color = "white" if value > peak / 2 else "black"
            axes.text(j, i, str(value), ha="center", va="center", color=color)
    axes.set_xticks(range(len(matrix[0])), labels[: len(matrix[0])])
    axes.set_yticks(range(len(matrix)), labels[: len(matrix)])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return figure


def confusion_png(report: dict[str, Any], title: str) -> bytes:
    return png(confusion_figure(report, title))


async def render_confusion(report: dict[str, Any], title: str) -> bytes:
    """`confusion_png` off the event loop."""
    return await asyncio.to_thread(confusion_png, report, title)


# --- macro-F1 by version -------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionPoint:
    """One bar of the versions chart."""

    version: str
    macro_f1: float
    eval_key: str  # same key: same eval rows; a change is marked on the chart
    eval_name: str  # `classifier.card_text.EvalSet.short()`
    status: str
    reliable: bool = True


def version_points(items: Sequence[Any]) -> list[VersionPoint]:
    """Bars for versions with figures, in the given order (oldest first). `items` have
    `version`, `status`, `eval_set` and `macro_f1` (registry entries) or `eval_macro_f1`
    (/models rows)."""
    points = []
    for item in items:
        f1 = getattr(item, "macro_f1", None)
        f1 = getattr(item, "eval_macro_f1", None) if f1 is None else f1
        evalset = item.eval_set
        if f1 is None or evalset is None:
            continue
        points.append(
            VersionPoint(
                item.version, float(f1), evalset.key, evalset.short(), item.status, evalset.reliable
            )
        )
    return points


def versions_figure(points: Sequence[VersionPoint], title: str) -> Any:
    """A bar per version (colour: status; hatched: unreliable figures) with its macro-F1, and a
    dashed line wherever the eval set changes from one version to the next."""
    figure = _figure(max(5.0, 0.7 * len(points) + 2), 4.0)
    axes = figure.add_subplot()
    xs = list(range(len(points)))
    bars = axes.bar(
        xs,
        [p.macro_f1 for p in points],
        color=[STATUS_COLORS.get(p.status, OTHER_COLOR) for p in points],
        hatch=None,
    )
    for bar, point in zip(bars, points, strict=True):
        if not point.reliable:
            bar.set_hatch("//")
        axes.annotate(
            f"{point.macro_f1:.3f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    for i in range(1, len(points)):
        if points[i].eval_key != points[i - 1].eval_key:
            axes.axvline(i - 0.5, color="#555555", linestyle="--", linewidth=1)
            axes.text(i - 0.45, 1.02, points[i].eval_name, fontsize=7, rotation=90, va="top")
    if points:
        axes.text(-0.45, 1.02, points[0].eval_name, fontsize=7, rotation=90, va="top")
    axes.set_xticks(xs, [p.version for p in points], rotation=45 if len(points) > 8 else 0)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("macro-F1")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def versions_png(points: Sequence[VersionPoint], title: str) -> bytes:
    return png(versions_figure(points, title))


async def render_versions(points: Sequence[VersionPoint], title: str) -> bytes:
    """`versions_png` off the event loop."""
    return await asyncio.to_thread(versions_png, list(points), title)


# --- a model's dev curve -------------------------------------------------------------------------
def dev_curve_figure(curve: Sequence[dict[str, Any]], best_epoch: int | None, title: str) -> Any:
    """Dev macro-F1 per epoch (the card's `training.dev_curve`), the best epoch marked."""
    figure = _figure(6, 3.6)
    axes = figure.add_subplot()
    epochs = [int(p["epoch"]) for p in curve]
    values = [float(p["dev_macro_f1"]) for p in curve]
    axes.plot(epochs, values, marker="o", color=OTHER_COLOR, label="dev macro-F1")
    if best_epoch in epochs:
        best = values[epochs.index(best_epoch)]
        axes.plot(
            [best_epoch],
            [best],
            marker="*",
            markersize=14,
            color="#2e7d32",
            linestyle="none",
            label=f"best (epoch {best_epoch}): weights kept",
        )
    axes.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    axes.set_xlabel("epoch")
    axes.set_ylabel("dev macro-F1")
    axes.set_title(title)
    axes.legend(fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def dev_curve_png(curve: Sequence[dict[str, Any]], best_epoch: int | None, title: str) -> bytes:
    return png(dev_curve_figure(curve, best_epoch, title))


# --- a retrain's learning curve ------------------------------------------------------------------
def learning_curve_png(curve: dict[str, Any], title: str) -> bytes:
    """Macro-F1 against the number of user labels (a retrain's learning curve) as PNG bytes."""
    points = curve["points"]
    figure = _figure(5.0, 3.2)
    axes = figure.add_subplot()
    xs = [p["labels"] for p in points]
    ys = [p["macro_f1"] for p in points]
    axes.plot(xs, ys, marker="o", color="#5b8def")
    for x, y, p in zip(xs, ys, points, strict=True):
        axes.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center")
        axes.annotate(f"{round(100 * p['fraction'])}%", (x, min(ys)), fontsize=8, ha="center")
    axes.set_xlabel("your labels used in training")
    axes.set_ylabel("eval macro-F1")
    axes.set_title(f"{title}: {curve.get('verdict', '')}")
    axes.spines[["top", "right"]].set_visible(False)
    return png(figure)


async def render_learning_curve(curve: dict[str, Any], title: str) -> bytes:
    """`learning_curve_png` off the event loop."""
    return await asyncio.to_thread(learning_curve_png, curve, title)
