"""Progress of long steps: a tqdm bar on a terminal, log lines everywhere else.

    with progress("encoding texts", total=len(texts), unit="text") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

On a terminal (stderr is a TTY) a tqdm bar appears once the step has run `MIN_SECONDS`. Elsewhere
(systemd, Docker, a pipe) the logger `classifier.progress` writes a line at every 10% and at
least every `every_seconds` (10 by default), with the elapsed time and an ETA, and a closing
line; steps that finish within `MIN_SECONDS` write nothing. `configure()` changes the interval
(the CLI passes PROGRESS_LOG_SECONDS; 0 also logs the short steps) or turns progress off.

Nothing here imports tqdm until a bar is drawn.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MIN_SECONDS = 2.0  # quieter steps show nothing
STEP_FRACTION = 0.1  # log a line at every 10% …
EVERY_SECONDS = 10.0  # … and at least this often


@dataclass
class _Config:
    enabled: bool = True
    every_seconds: float = EVERY_SECONDS
    bar: bool | None = None  # None: a bar when stderr is a terminal


_config = _Config()


def configure(
    *, enabled: bool | None = None, every_seconds: float | None = None, bar: bool | None = None
) -> None:
    """Process-wide defaults: `enabled=False` silences every step; `every_seconds` is the log
    interval off a terminal (0: a line at every 10% of every step, short ones too); `bar`
    forces the tqdm bar on or off (None: on a terminal only)."""
    if enabled is not None:
        _config.enabled = enabled
    if every_seconds is not None:
        _config.every_seconds = max(0.0, float(every_seconds))
    if bar is not None:
        _config.bar = bar


def format_seconds(seconds: float) -> str:
    """`0.4 s`, `12 s`, `2 min 05 s`, `1 h 02 min`."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """One step's progress (see the module docstring). Use `progress(...)` to make one."""

    def __init__(self, desc: str, total: int | None, unit: str, enabled: bool) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self.started = time.monotonic()
        self._every = _config.every_seconds
        self._quiet_for = MIN_SECONDS if self._every > 0 else 0.0
        self._last_line = self.started
        self._next_fraction = STEP_FRACTION
        self._logged = False
        self._bar: Any = None
        self._enabled = enabled and _config.enabled and (total is None or total > 0)
        if self._enabled and _use_bar():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, delay=MIN_SECONDS, leave=False, file=sys.stderr
            )

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self.started < self._quiet_for:
            return
        fraction = self.done / self.total if self.total else None
        crossed = fraction is not None and fraction >= self._next_fraction
        if crossed or (self._every > 0 and now - self._last_line >= self._every):
            if fraction is not None:
                # The next 10% mark, but not one just past this line (after the quiet period).
                mark = (math.floor(fraction / STEP_FRACTION + 1e-9) + 1) * STEP_FRACTION
                self._next_fraction = mark + (STEP_FRACTION if mark - fraction < 0.05 else 0)
            if fraction is None or fraction < 1.0:
                self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.started
        if self.total:
            eta = elapsed * (self.total - self.done) / max(self.done, 1)
            log.info(
                "%s: %s/%s %s (%d%%), %s elapsed, ETA %s",
                self.desc,
                f"{self.done:,}",
                f"{self.total:,}",
                self.unit,
                int(100 * self.done / self.total),
                format_seconds(elapsed),
                format_seconds(eta),
            )
        else:
            log.info("%s: %s %s, %s elapsed", self.desc, f"{self.done:,}", self.unit, _s(elapsed))
        self._last_line, self._logged = now, True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            return
        elapsed = time.monotonic() - self.started
        if self._enabled and (self._logged or elapsed >= self._quiet_for):
            log.info("%s: done, %s %s in %s", self.desc, f"{self.done:,}", self.unit, _s(elapsed))
            self._enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_s = format_seconds


def _use_bar() -> bool:
    if _config.bar is not None:
        return _config.bar
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(
    desc: str, total: int | None = None, *, unit: str = "it", enabled: bool | None = True
) -> Progress:
    """A progress reporter for one step; `enabled=False` (e.g. `RunSettings.progress`) makes it
    silent, None counts as True."""
    return Progress(desc, total, unit, enabled is not False)


class EpochClock:
    """Elapsed time, ETA and "best so far" after each epoch, for the epoch lines the commands
    print (`tick` from an `on_epoch` callback). The ETA uses the epochs' own mean duration once
    there is one (the first epoch's time also holds the data preparation)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.best = float("-inf")
        self._ticks: list[float] = []

    def tick(self, epoch: int, epochs: int, dev_macro_f1: float) -> tuple[float, float, bool]:
        """(elapsed seconds, ETA seconds, whether this epoch is the best so far)."""
        now = time.monotonic()
        self._ticks.append(now)
        elapsed = now - self.started
        if len(self._ticks) >= 2:
            per_epoch = (self._ticks[-1] - self._ticks[0]) / (len(self._ticks) - 1)
        else:
            per_epoch = elapsed / max(epoch, 1)
        eta = per_epoch * max(epochs - epoch, 0)
        best = dev_macro_f1 > self.best
        self.best = max(self.best, dev_macro_f1)
        return elapsed, eta, best
