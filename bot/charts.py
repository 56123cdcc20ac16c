"""Charts as PNG bytes (matplotlib's Agg backend, no pyplot global state): /mood's bar chart and
a retrain report's confusion matrix.

Rendering takes tens of milliseconds, so the async helpers run it in a worker thread: the event
loop keeps serving other chats meanwhile. matplotlib is imported inside the functions on purpose:
it costs about a second and tens of MB, and most bot processes never draw a chart.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import Any


def _axes(width: float, height: float) -> tuple[Any, Any]:
    """A figure on the Agg canvas and its one set of axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


COLORS = {"negative": "#d9534f", "neutral": "#9e9e9e", "positive": "#5cb85c"}


def mood_chart_png(counts: Mapping[str, int], title: str) -> bytes:
    """A bar chart of message counts per label, with percentages on the bars."""
    labels = list(counts)
    values = [counts[label] for label in labels]
    total = sum(values) or 1
    figure, axes = _axes(6, 3.5)
    bars = axes.bar(labels, values, color=[COLORS.get(label, "#5b8def") for label in labels])
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
    return _png(figure)


async def render_mood_chart(counts: Mapping[str, int], title: str) -> bytes:
    """`mood_chart_png` off the event loop."""
    return await asyncio.to_thread(mood_chart_png, dict(counts), title)


def confusion_png(report: dict[str, Any], title: str) -> bytes:
    """A confusion-matrix heat map (rows: true label, columns: predicted) as PNG bytes."""
    labels = list(report.get("restricted_to") or report["labels"])
    matrix = report["confusion"]
    figure, axes = _axes(4.6, 4.0)
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
    return _png(figure)


async def render_confusion(report: dict[str, Any], title: str) -> bytes:
    """`confusion_png` off the event loop."""
    return await asyncio.to_thread(confusion_png, report, title)


def learning_curve_png(curve: dict[str, Any], title: str) -> bytes:
    """Macro-F1 against the number of user labels (a retrain's learning curve) as PNG bytes."""
    points = curve["points"]
    figure, axes = _axes(5.0, 3.2)
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
    return _png(figure)


async def render_learning_curve(curve: dict[str, Any], title: str) -> bytes:
    """`learning_curve_png` off the event loop."""
    return await asyncio.to_thread(learning_curve_png, curve, title)
