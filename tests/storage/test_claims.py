"""Queue claims: one person at a time per item (LABELS_PER_ITEM=1), also across processes that
share the database (separate engines here; PostgreSQL too with SENTIBOT_TEST_POSTGRES_URL), at
most LABELS_PER_ITEM at once otherwise; queue entries hold items out of the queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import repositories as repo
from storage.db import create_engine, create_sessionmaker
from storage.models import QueueClaim
from tests.storage.conftest import record

HOUR = timedelta(hours=1)


async def claim(sm, message_id, user_id, now, *, lpi=1, minutes=60) -> bool:
    async with sm.begin() as s:
        return await repo.claim_item(
            s,
            message_id,
            user_id,
            labels_per_item=lpi,
            now=now,
            expires_at=now + timedelta(minutes=minutes),
            round_version="v0001",
        )


async def test_one_holder_at_a_time_until_release_or_expiry(sm):
    async with sm.begin() as s:
        mid = (await record(s, tg_id=1)).message_id
    now = datetime.now(UTC)
    assert await claim(sm, mid, 1, now, minutes=10)
    assert not await claim(sm, mid, 2, now)  # held by 1
    assert await claim(sm, mid, 1, now)  # their own again
    assert await claim(sm, mid, 2, now + timedelta(minutes=61))  # 1's claim expired
    async with sm.begin() as s:
        await repo.release_claim(s, mid, 2, now + timedelta(minutes=62))
        assert await repo.has_claim(s, mid, 2) and not await repo.has_claim(s, mid, 3)
    assert await claim(sm, mid, 3, now + timedelta(minutes=63))
    async with sm() as s:
        shown = await repo.shown_in_round(s, "v0001")
        assert [item.message_id for item in shown] == [mid]


async def test_labels_per_item_people_at_once_and_a_tie_waits_for_one_more(sm):
    async with sm.begin() as s:
        mid = (await record(s, tg_id=1)).message_id
    now = datetime.now(UTC)
    assert await claim(sm, mid, 1, now, lpi=2) and await claim(sm, mid, 2, now, lpi=2)
    assert not await claim(sm, mid, 3, now, lpi=2)
    async with sm.begin() as s:
        await repo.set_label(s, mid, 1, "positive", source="queue")
        await repo.set_label(s, mid, 2, "negative", source="queue")
        await repo.release_claim(s, mid, 1, now)
        await repo.release_claim(s, mid, 2, now)
    assert await claim(sm, mid, 3, now, lpi=2)  # a tie: one more person
    assert not await claim(sm, mid, 4, now, lpi=2)
    async with sm.begin() as s:
        await repo.set_label(s, mid, 3, "positive", source="queue")
    assert not await claim(sm, mid, 4, now + 2 * HOUR, lpi=2)  # resolved: out of the queue


async def _worker(url: str, user_id: int, now: datetime, lpi: int) -> list[int]:
    """One bot process: pick and claim items until its person's queue is empty."""
    engine = create_engine(url)
    sm = create_sessionmaker(engine)
    got = []
    try:
        while True:
            async with sm() as s:
                items = await repo.queue_candidates(
                    s, user_id, active_version="v0001", labels_per_item=lpi, now=now, limit=3
                )
            if not items:
                return got
            for item in items:
                if await claim(sm, item.message_id, user_id, now, lpi=lpi):
                    got.append(item.message_id)
                    async with sm.begin() as s:  # skipping keeps the person's queue moving
                        await repo.skip_queue_item(s, user_id, item.message_id)
                    break
            await asyncio.sleep(0)
    finally:
        await engine.dispose()


async def test_never_two_at_once_across_processes(sm, db_url):
    async with sm.begin() as s:
        for i in range(30):
            await record(s, tg_id=i, text=f"item {i}", probs={"positive": 0.5 + i / 100})
    now = datetime.now(UTC)
    handed = await asyncio.gather(*(_worker(db_url, 100 + w, now, 1) for w in range(6)))
    everything = [mid for got in handed for mid in got]
    assert len(everything) == len(set(everything)) == 30  # each item to exactly one person
    async with sm() as s:
        holders = Counter(await s.scalars(select(QueueClaim.message_id)))
    assert set(holders.values()) == {1}


async def test_at_most_labels_per_item_people_across_processes(sm, db_url):
    async with sm.begin() as s:
        for i in range(12):
            await record(s, tg_id=i, text=f"item {i}")
    now = datetime.now(UTC)
    handed = await asyncio.gather(*(_worker(db_url, 200 + w, now, 2) for w in range(5)))
    per_item = Counter(mid for got in handed for mid in got)
    assert set(per_item.values()) == {2} and len(per_item) == 12


async def test_held_entries_leave_the_queue(sm):
    async with sm.begin() as s:
        a = await record(s, tg_id=1, text="spam 1")
        b = await record(s, tg_id=2, text="spam 2")
    async with sm() as s:
        new = await repo.unadmitted_messages(s, 10)
        assert [m.message_id for m in new] == [a.message_id, b.message_id]
    async with sm.begin() as s:
        await repo.add_queue_entries(
            s,
            [
                repo.Admission(new[0], "k", None),
                repo.Admission(new[1], "k", "duplicate"),
            ],
        )
        await repo.add_queue_entries(s, [repo.Admission(new[1], "k", None)])  # first one stays
    async with sm() as s:
        assert await repo.unadmitted_messages(s, 10) == []
        assert await repo.open_text_keys(s, {"k", "z"}) == {"k"}
        assert await repo.held_counts(s) == {"duplicate": 1}
        assert await repo.queue_remaining(s, 7) == 1
        now = datetime.now(UTC)
        items = await repo.queue_candidates(
            s, 7, active_version="v0001", labels_per_item=1, now=now, limit=5
        )
        assert [i.message_id for i in items] == [a.message_id]
        times = await repo.open_entry_times(s, {11}, now - HOUR)
        assert len(times[11]) == 1
