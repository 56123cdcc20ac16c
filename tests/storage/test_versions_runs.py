"""Model versions (exactly one active), training runs and the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from storage import repositories as repo
from storage.errors import NotFoundError, TrainingAlreadyRunningError
from storage.models import ModelVersion


async def register(s, version: str):
    return await repo.register_model_version(
        s,
        version,
        folder=f"/models/{version}",
        backbone="embedding",
        metrics={"macro_f1": 0.6},
        manifest={"rows": 10},
    )


async def test_register_activate_retire(sm):
    async with sm.begin() as s:
        await register(s, "v0001")
        assert await repo.get_active_model_version(s) is None
        assert await repo.activate_model_version(s, "v0001") is None
        await register(s, "v0002")
        previous = await repo.activate_model_version(s, "v0002", reason="promoted")
        assert previous.version == "v0001"
    async with sm() as s:
        active = await repo.get_active_model_version(s)
        assert (active.version, active.reason) == ("v0002", "promoted")
        assert active.metrics == {"macro_f1": 0.6} and active.activated_at is not None
        old = await repo.get_model_version(s, "v0001")
        assert old.status == "retired"
        n_active = await s.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.status == "active")
        )
        assert n_active == 1
    async with sm.begin() as s:  # rollback: activate the old one again
        assert (await repo.activate_model_version(s, "v0001")).version == "v0002"
        assert await repo.activate_model_version(s, "v0001") is None  # already active
    async with sm() as s:
        assert (await repo.get_active_model_version(s)).version == "v0001"


async def test_database_refuses_two_active_versions(sm):
    with pytest.raises(IntegrityError):
        async with sm.begin() as s:
            await register(s, "v0001")
            await register(s, "v0002")
            await s.execute(update(ModelVersion).values(status="active"))


async def test_status_changes_and_listing(sm):
    async with sm.begin() as s:
        for v in ("v0001", "v0002", "v0003"):
            await register(s, v)
        await repo.activate_model_version(s, "v0002")
        rejected = await repo.set_model_status(s, "v0003", "rejected", reason="macro-F1 dropped")
        assert (rejected.status, rejected.reason) == ("rejected", "macro-F1 dropped")
        with pytest.raises(ValueError, match="active"):
            await repo.set_model_status(s, "v0002", "retired")
        with pytest.raises(ValueError, match="status"):
            await repo.set_model_status(s, "v0001", "promoted")
        with pytest.raises(NotFoundError):
            await repo.activate_model_version(s, "v0099")
        assert await repo.next_version_name(s) == "v0004"
    async with sm() as s:
        versions = await repo.list_model_versions(s)
        assert [v.version for v in versions] == ["v0003", "v0002", "v0001"]
        assert [v.version for v in await repo.list_model_versions(s, limit=1)] == ["v0003"]


async def test_next_version_name_when_empty(sm):
    async with sm() as s:
        assert await repo.next_version_name(s) == "v0001"


async def test_training_runs(sm):
    async with sm.begin() as s:
        assert await repo.running_training_run(s) is None
        run = await repo.start_training_run(s, "admin", requested_by=42, details={"pid": 7})
    with pytest.raises(TrainingAlreadyRunningError):
        async with sm.begin() as s:
            await repo.start_training_run(s, "schedule")
    async with sm.begin() as s:
        running = await repo.running_training_run(s)
        assert running.id == run.id and running.details == {"pid": 7}
        done = await repo.finish_training_run(
            s,
            run.id,
            status="succeeded",
            candidate_version="v0002",
            decision="rejected",
            reason="recall of negative dropped 0.08",
            details={"rows": 120},
        )
        assert done.finished_at is not None
        with pytest.raises(ValueError):
            await repo.finish_training_run(s, run.id, status="running")
        with pytest.raises(ValueError):
            await repo.start_training_run(s, "cron")
    async with sm() as s:
        last = await repo.last_training_run(s)
        assert (last.id, last.decision, last.candidate_version) == (run.id, "rejected", "v0002")
        assert last.details == {"rows": 120} and last.requested_by == 42
        assert await repo.running_training_run(s) is None
        assert (await repo.get_training_run(s, run.id)).trigger == "admin"


async def test_stale_runs_are_failed(sm):
    async with sm.begin() as s:
        await repo.start_training_run(s, "cli")
    async with sm.begin() as s:
        assert await repo.fail_stale_runs(s) == 1
    async with sm() as s:
        run = (await repo.list_training_runs(s))[0]
        assert run.status == "failed" and "restart" in run.error
        assert await repo.last_training_run(s, status=None) is not None
        assert await repo.last_training_run(s) is None  # no successful run


async def test_audit_log(sm):
    async with sm.begin() as s:
        await repo.add_audit(s, 1, "retrain", {"force": True})
        await repo.add_audit(s, 1, "rollback", {"from": "v0002", "to": "v0001"})
    async with sm() as s:
        entries = await repo.list_audit(s)
        assert [e.action for e in entries] == ["rollback", "retrain"]
        assert entries[0].arguments == {"from": "v0002", "to": "v0001"}
        assert [e.action for e in await repo.list_audit(s, action="retrain")] == ["retrain"]
