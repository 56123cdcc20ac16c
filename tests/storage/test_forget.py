"""Forgetting a person leaves no row holding their id or text (except the opt-out flag)."""

from __future__ import annotations

import sqlite3

from storage import repositories as repo
from tests.storage.conftest import record

UID = 987654321
OTHER = 55
SECRET = "my secret diary entry about tulips"


def rows_mentioning(db_path, needles: list[str], uid: int) -> list[tuple[str, tuple]]:
    """Every row of every table that holds `uid` or contains one of `needles`."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        hits = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if value == uid or (
                        isinstance(value, str) and any(n in value for n in needles)
                    ):
                        hits.append((table, row))
                        break
        return hits
    finally:
        conn.close()


async def populate(sm):
    async with sm.begin() as s:
        mine_group = await record(s, chat_id=-10, user_id=UID, tg_id=1, text=SECRET)
        mine_private = await record(
            s, chat_id=UID, user_id=UID, tg_id=2, text="private tulips", chat_type="private"
        )
        theirs = await record(s, chat_id=-10, user_id=OTHER, tg_id=3, text="other person text")
        await repo.set_label(s, mine_group.message_id, OTHER, "neutral", source="queue")
        await repo.set_label(s, mine_private.message_id, UID, "positive", source="inline")
        await repo.set_label(s, theirs.message_id, UID, "negative", source="queue")
        await repo.set_label(s, theirs.message_id, UID, "positive", source="queue")  # history
        await repo.set_label(s, theirs.message_id, OTHER, "positive", source="inline")
        await repo.skip_queue_item(s, UID, theirs.message_id)
        await repo.skip_queue_item(s, OTHER, mine_group.message_id)
        await repo.add_audit(s, UID, "retrain", {"force": True})
        await repo.add_audit(s, OTHER, "label", {"user": UID, "text": SECRET, "keep": "ok"})
        await repo.add_audit(s, OTHER, "rollback", {"from": "v0002", "to": "v0001"})
        run = await repo.start_training_run(s, "admin", requested_by=UID)
        await repo.finish_training_run(s, run.id, status="failed", error="x")
    return theirs.message_id


async def test_forget_removes_every_trace(sm, db_path):
    theirs = await populate(sm)
    needles = [SECRET, "private tulips", str(UID)]
    assert rows_mentioning(db_path, needles, UID)  # the scan does find them before
    async with sm.begin() as s:
        report = await repo.forget_user(s, UID)
    assert (report.messages, report.opted_out) == (2, False)
    assert report.labels == 2 and report.skips == 1 and report.audit_entries == 2
    assert rows_mentioning(db_path, needles, UID) == []
    async with sm() as s:
        # Other people's data stays: their message, their label, the unrelated audit entry.
        assert (await repo.get_message(s, theirs)).text == "other person text"
        assert [lb.user_id for lb in await repo.labels_for_message(s, theirs)] == [OTHER]
        audit = {e.action: e.arguments for e in await repo.list_audit(s)}
        assert audit["rollback"] == {"from": "v0002", "to": "v0001"}
        assert audit["label"] == {"user": "[forgotten]", "text": "[forgotten]", "keep": "ok"}
        assert await repo.queue_remaining(s, OTHER) == 0  # their skipped item is gone too
        assert await repo.is_opted_out(s, UID) is False


async def test_forget_keeps_only_the_opt_out_flag(sm, db_path):
    await populate(sm)
    async with sm.begin() as s:
        await repo.set_opted_out(s, UID)
        report = await repo.forget_user(s, UID)
    assert report.opted_out
    hits = rows_mentioning(db_path, [SECRET, "private tulips", str(UID)], UID)
    assert hits == [("users", (UID, None, None, None, 1))]
    async with sm() as s:
        assert await repo.is_opted_out(s, UID) is True


async def test_forget_with_opt_out_for_unknown_user(sm, db_path):
    async with sm.begin() as s:
        report = await repo.forget_user(s, 4242, opt_out=True)
    assert report.messages == 0 and report.opted_out
    async with sm() as s:
        assert await repo.is_opted_out(s, 4242)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT * FROM users").fetchall() == [(4242, None, None, None, 1)]
    conn.close()
