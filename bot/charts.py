"""Charts as PNG bytes (matplotlib's Agg backend, no pyplot global state).

Rendering takes tens of milliseconds, so the async helpers run it in a worker thread: the event
loop keeps serving other chats meanwhile.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping

COLORS = {"negative": "#d9534f", "neutral": "#9e9e9e", "positive": "#5cb85c"}


def mood_chart_png(counts: Mapping[str, int], title: str) -> bytes:
    """A bar chart of message counts per label, with percentages on the bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(counts)
    values = [counts[label] for label in labels]
    total = sum(values) or 1
    figure = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
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
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


async def render_mood_chart(counts: Mapping[str, int], title: str) -> bytes:
    """`mood_chart_png` off the event loop."""
    return await asyncio.to_thread(mood_chart_png, dict(counts), title)
