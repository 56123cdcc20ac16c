"""/mood's trend: messages per label per day (per hour over the last 24 hours), with the days
without messages filled in, so the chart's time axis is even. Long spans are grouped by week."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MAX_DAILY_POINTS = 92  # beyond about three months a daily chart is a blur: weeks instead


@dataclass(frozen=True, slots=True)
class TrendPoint:
    start: datetime  # UTC start of the hour, day or week
    counts: dict[str, int] = field(default_factory=dict)  # label → messages

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _parse(bucket: str, hourly: bool) -> datetime:
    fmt = "%Y-%m-%d %H" if hourly else "%Y-%m-%d"
    return datetime.strptime(bucket, fmt).replace(tzinfo=UTC)


def _floor(moment: datetime, step: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if step == timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def build_trend(
    rows: Iterable[tuple[str, str, int]],
    labels: list[str],
    *,
    since: datetime | None,
    now: datetime,
    hourly: bool = False,
) -> list[TrendPoint]:
    """`storage.repositories.mood_trend` rows as one point per hour/day from `since` (or the
    first message) to `now`, every label in every point; weekly points for long spans."""
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    found: dict[datetime, dict[str, int]] = {}
    for bucket, label, n in rows:
        counts = found.setdefault(_parse(bucket, hourly), {})
        counts[label] = counts.get(label, 0) + n
    if not found:
        return []
    first = _floor(since, step) if since is not None else min(found)
    first = min(first, min(found))
    points, moment, end = [], first, _floor(now, step)
    end = max(end, max(found))
    while moment <= end:
        counts = {label: 0 for label in labels}
        for label, n in found.get(moment, {}).items():
            counts[label] = counts.get(label, 0) + n
        points.append(TrendPoint(moment, counts))
        moment += step
    if not hourly and len(points) > MAX_DAILY_POINTS:
        return _weekly(points)
    return points


def _weekly(days: list[TrendPoint]) -> list[TrendPoint]:
    """Daily points summed into weeks starting on Monday."""
    weeks: dict[datetime, dict[str, int]] = {}
    for day in days:
        start = day.start - timedelta(days=day.start.weekday())
        counts = weeks.setdefault(start, {})
        for label, n in day.counts.items():
            counts[label] = counts.get(label, 0) + n
    return [TrendPoint(start, counts) for start, counts in sorted(weeks.items())]
