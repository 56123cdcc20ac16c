"""Helpers shared by every benchmark: data paths (with a clear skip), timing, peak memory.

Benchmarks are scripts (`python -m benchmarks.classifier` from the repo root), not tests: each
measures sentibot and a peer in the same run and prints ratios.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared benchmark data lives next to the repository (`../shared/data`); SHARED_DATA overrides.
DATA_ROOT = Path(os.environ.get("SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def data_file(*parts: str) -> Path:
    """Path of a shared data file, or exit 0 with a clear skip message when it is absent."""
    path = DATA_ROOT.joinpath(*parts)
    if not path.is_file():
        print(
            f"SKIPPED: benchmark data {path} not found (expected the shared data folder at "
            f"{DATA_ROOT}; set SHARED_DATA to its location)"
        )
        sys.exit(0)
    return path


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


@contextmanager
def timed(results: dict[str, float], key: str) -> Iterator[None]:
    """Store the wall-clock seconds of the block in `results[key]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        results[key] = time.perf_counter() - started


def cpu_note() -> str:
    """One line about the CPU budget, so numbers from different machines are read fairly."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} "
        f"load_avg_1m={load:.2f} (other processes share these cores: expect noise)"
    )


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"
