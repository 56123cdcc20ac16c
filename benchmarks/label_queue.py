"""The /label queue at scale: picking the next item and counting what is left.

Builds a SQLite database (the project's migrations) holding `--messages` scored messages, the
`--labelled` most uncertain ones already labelled (the queue serves those first), then times
what one /label press runs: `next_queue_item` (smallest margin under the active version,
skipping done items) and `queue_remaining`. The peer, in the same run on the same file, is plain
`sqlite3` doing the least a query without an index on margin must do: one ORDER BY margin over
every prediction of the version (what the queue did before migration 0002).

    python benchmarks/label_queue.py [--messages 1000000] [--labelled 10000] [--repeat 5]

There is no issue target; the figure to watch is that a /label press stays in milliseconds and
far below the full sort as the database grows (the bot has one SQLite connection, so a slow
read holds up everyone's messages). Needs no data files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_note, ratio  # noqa: E402

VERSION = "v0001"
STAMP = "2026-01-01 00:00:00.000000"
PROBS = json.dumps({"negative": 0.25, "neutral": 0.5, "positive": 0.25})


def build(path: Path, n: int, labelled: int) -> None:
    """Migrate, then bulk-load n messages with one prediction each; label the least sure."""
    from storage.db import upgrade_database

    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(0)
    margins = [rng.random() for _ in range(n)]
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO chats(id, type, created_at) VALUES (-1, 'group', ?)", (STAMP,))
        db.executemany(
            "INSERT INTO messages(id, chat_id, telegram_message_id, text, received_at) "
            "VALUES (?, -1, ?, ?, ?)",
            ((i, i, f"message {i}", STAMP) for i in range(1, n + 1)),
        )
        db.executemany(
            "INSERT INTO predictions(message_id, model_version, label, confidence, margin, "
            "probs, created_at) VALUES (?, ?, 'neutral', 0.5, ?, ?, ?)",
            ((i, VERSION, margins[i - 1], PROBS, STAMP) for i in range(1, n + 1)),
        )
        done = sorted(range(1, n + 1), key=lambda i: margins[i - 1])[:labelled]
        db.executemany(
            "INSERT INTO labels(message_id, user_id, label, source, created_at, updated_at) "
            "VALUES (?, NULL, 'neutral', 'import', ?, ?)",
            ((i, STAMP, STAMP) for i in done),
        )
    db.close()


async def time_queue(path: Path, repeat: int) -> dict[str, float]:
    from storage import repositories as repo
    from storage.db import create_engine, create_sessionmaker

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessionmaker = create_sessionmaker(engine)
    pick, count = [], []
    try:
        async with sessionmaker() as session:
            for _ in range(repeat + 1):  # the first round warms the page cache
                started = time.perf_counter()
                item = await repo.next_queue_item(session, 7, active_version=VERSION)
                pick.append(time.perf_counter() - started)
                started = time.perf_counter()
                left = await repo.queue_remaining(session, 7)
                count.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    assert item is not None and item.margin is not None
    return {
        "next_ms": statistics.median(pick[1:]) * 1e3,
        "remaining_ms": statistics.median(count[1:]) * 1e3,
        "left": left,
    }


def time_full_sort(path: Path, repeat: int) -> float:
    db = sqlite3.connect(path)
    sql = (
        "SELECT message_id FROM predictions NOT INDEXED WHERE model_version = ? "
        "ORDER BY margin, message_id LIMIT 1"
    )
    laps = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        db.execute(sql, (VERSION,)).fetchall()
        laps.append(time.perf_counter() - started)
    db.close()
    return statistics.median(laps[1:]) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=int, default=10_000, help="labelled messages")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(cpu_note())
    with tempfile.TemporaryDirectory(prefix="sentibot-bench-queue-") as tmp:
        path = Path(tmp) / "queue.db"
        started = time.perf_counter()
        build(path, args.messages, args.labelled)
        seconds = time.perf_counter() - started
        built = f"{args.messages:,} scored messages ({args.labelled:,} labelled)"
        print(f"built {built} in {seconds:.0f} s")
        ours = asyncio.run(time_queue(path, args.repeat))
        peer = time_full_sort(path, args.repeat)
    print(f"next_queue_item: {ours['next_ms']:.1f} ms")
    print(f"queue_remaining: {ours['remaining_ms']:.1f} ms ({ours['left']:,} left)")
    print(f"peer, plain sqlite3 full ORDER BY margin: {peer:.1f} ms")
    print(f"next_queue_item / full sort: {ratio(ours['next_ms'], peer)} (lower is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
