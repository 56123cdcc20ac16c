"""Alembic migrations: from empty, round trip, matches the models, refuses newer databases."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from storage.db import (
    check_database,
    create_engine,
    create_sessionmaker,
    downgrade_database,
    upgrade_database,
)
from storage.errors import DatabaseTooNewError, DatabaseUnreachableError
from storage.models import Base
from tests.storage.conftest import record

TABLES = {
    "users",
    "chats",
    "messages",
    "predictions",
    "labels",
    "label_history",
    "queue_skips",
    "model_versions",
    "training_runs",
    "audit_log",
    "queue_claims",
    "queue_entries",
    "annotator_states",
    "label_reviews",
}


def tables(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {r[0] for r in rows} - {"alembic_version", "sqlite_sequence"}
    finally:
        conn.close()


def url_of(path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_upgrade_from_empty_creates_the_folder_and_tables(tmp_path):
    path = tmp_path / "new" / "folder" / "s.db"
    state = await upgrade_database(url_of(path))
    assert state.up_to_date and state.current == state.head
    assert tables(path) == TABLES
    again = await upgrade_database(url_of(path))  # idempotent
    assert again.current == state.current
    assert (await check_database(url_of(path))).up_to_date


async def test_engine_pragmas(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    engine = create_engine(url_of(path), busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            values = {
                p: (await conn.exec_driver_sql(f"PRAGMA {p}")).scalar()
                for p in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 1234,
        "synchronous": 1,
    }


async def test_downgrade_upgrade_round_trip(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    down = await downgrade_database(url_of(path), "base")
    assert down.current is None and tables(path) == set()
    await upgrade_database(url_of(path))
    assert tables(path) == TABLES
    engine = create_engine(url_of(path))
    try:
        async with create_sessionmaker(engine).begin() as s:  # the schema is usable again
            assert (await record(s, tg_id=1)).message_id == 1
    finally:
        await engine.dispose()


async def test_a_0001_database_with_data_upgrades_to_the_queue_index(tmp_path):
    path = tmp_path / "s.db"
    assert (await upgrade_database(url_of(path), "0001")).current == "0001"
    engine = create_engine(url_of(path))
    try:
        async with create_sessionmaker(engine).begin() as s:
            await record(s, tg_id=1)
    finally:
        await engine.dispose()
    assert (await check_database(url_of(path))).up_to_date is False
    state = await upgrade_database(url_of(path))
    assert state.up_to_date and state.current == state.head
    conn = sqlite3.connect(path)
    try:
        index = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_predictions_version_margin'"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM predictions").fetchone()[0] == 1
    finally:
        conn.close()
    assert index is not None and "model_version, margin, message_id" in index[0]
    down = await downgrade_database(url_of(path), "0001")
    assert down.current == "0001"


async def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    engine = create_engine(url_of(path))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "s.db"
    await upgrade_database(url_of(path))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseTooNewError, match="9999_from_the_future.*newer sentibot"):
        await upgrade_database(url_of(path))
    with pytest.raises(DatabaseTooNewError):
        await check_database(url_of(path))


@pytest.mark.parametrize(
    "make_url",
    [
        lambda tmp: "not a url",
        lambda tmp: "nosuchdialect+driver://x/y",
        lambda tmp: f"sqlite+aiosqlite:///{tmp}",  # a folder, not a file
        lambda tmp: f"sqlite+aiosqlite:///{tmp / 'garbage.db'}",
    ],
)
async def test_unreachable_database_is_one_clear_error(tmp_path, make_url):
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseUnreachableError, match="DATABASE_URL") as info:
        await upgrade_database(make_url(tmp_path))
    assert "\n" not in str(info.value)


# --- 0003: model_versions in the model card's summary shape -------------------------------------
LEGACY_CARDS = Path(__file__).resolve().parents[1] / "legacy_cards"
DOCS_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
LEGACY = ("bootstrap", "cli_train", "retrain", "retrain_postprocessed")


def _legacy(name: str) -> dict:
    """A `metrics.json` as an older sentibot wrote it (its `metrics` and `manifest` are what
    the database got: the runtime registered a first model so, the learning loop a retrain)."""
    return json.loads((LEGACY_CARDS / f"{name}.json").read_text())


def _insert_versions(path, rows: list[tuple]) -> None:
    conn = sqlite3.connect(path)
    try:
        for i, (metrics, manifest) in enumerate(rows, 1):
            conn.execute(
                "INSERT INTO model_versions (version, folder, backbone, status, metrics, manifest,"
                " created_at) VALUES (?, ?, 'embedding', 'retired', ?, ?, ?)",
                (
                    f"v{i:04d}",
                    f"/m/v{i:04d}",
                    json.dumps(metrics),
                    json.dumps(manifest),
                    f"2026-11-28 23:0{i}:00.000000",
                ),
            )
        conn.commit()
    finally:
        conn.close()


def _versions(path) -> list[tuple[str, dict, dict]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT version, metrics, manifest FROM model_versions ORDER BY id")
        return [(v, json.loads(m), json.loads(f)) for v, m, f in rows.fetchall()]
    finally:
        conn.close()


async def _legacy_database(tmp_path) -> Path:
    path = tmp_path / "s.db"
    assert (await upgrade_database(url_of(path), "0002")).current == "0002"
    cards = [_legacy(name) for name in LEGACY]
    _insert_versions(path, [(c["metrics"], c["manifest"]) for c in cards] + [(None, None)])
    return path


async def test_0003_rewrites_every_version_into_one_shape_and_back(tmp_path):
    path = await _legacy_database(tmp_path)
    before = _versions(path)
    assert (await upgrade_database(url_of(path), "0003")).current == "0003"
    after = _versions(path)
    kinds = [manifest["kind"] for _, _, manifest in after]
    assert kinds == ["bootstrap", "train", "retrain", "retrain", "train"]
    for (_, old, old_manifest), (_, new, manifest) in zip(before, after, strict=True):
        assert new["card_version"] == manifest["card_version"] == 1
        if manifest["kind"] == "retrain":  # the figures were nested: now on top as well
            assert new["macro_f1"] == old["eval"]["macro_f1"] and new["measured_on"] == "eval"
            assert new["active_eval"] == old["active_eval"] and new["dev"] == old["dev"]
        elif old:  # flat: the bootstrap build's eval slice, `sentibot train`'s dev split
            assert new["macro_f1"] == old["macro_f1"]
            assert new["measured_on"] == ("eval" if manifest["kind"] == "bootstrap" else "dev")
        if old_manifest:
            assert manifest["rows"] == old_manifest["rows"]
            assert manifest["recipe"]["lr"] == old_manifest["train_config"]["lr"]
            assert "device" not in manifest["recipe"] and "train_config" not in manifest
    assert after[-1][1]["macro_f1"] is None and after[-1][1]["measured_on"] is None

    await downgrade_database(url_of(path), "0002")
    machine = ("device", "num_threads", "feature_cache")  # run settings: not part of a recipe
    for (_, old, old_manifest), (_, back, back_manifest) in zip(
        before, _versions(path), strict=True
    ):
        if isinstance(old, dict) and "eval" in old:
            old = {k: v for k, v in old.items() if k != "epochs_run"}  # not in the summary
        assert back == (old or {})
        old_manifest = old_manifest or {}
        recipe = {k: v for k, v in old_manifest.get("train_config", {}).items() if k not in machine}
        assert back_manifest == {**old_manifest, "train_config": recipe}
    await upgrade_database(url_of(path))
    assert _versions(path) == after  # and up again


async def test_0003_agrees_with_the_model_card(tmp_path, tiny_model_dir):
    """The migration keeps its own copy of the rules: it must give what `read_card` and
    `ModelCard.summary_*` give for a folder holding the same old card."""
    import shutil

    from classifier.card import read_card

    path = await _legacy_database(tmp_path)
    await upgrade_database(url_of(path))
    for name, (_, metrics, manifest) in zip(LEGACY, _versions(path), strict=False):
        folder = shutil.copytree(tiny_model_dir, tmp_path / name)
        (folder / "metrics.json").write_text(json.dumps(_legacy(name)))
        card = read_card(folder)
        expected = card.summary_metrics()
        if name == "bootstrap":  # its dev report was only in the folder, never in the database
            expected["dev"] = None
        assert metrics == expected, name
        assert manifest == card.summary_manifest(), name


def _documented_queries() -> list[str]:
    """The `model_versions` statements of docs/schema.md's sqlite3 section."""
    text = DOCS_SCHEMA.read_text(encoding="utf-8")
    sql = "\n".join(re.findall(r"```sql\n(.*?)```", text, flags=re.S))
    statements = [s.strip() for s in sql.split(";")]
    return [s for s in statements if "FROM model_versions" in s]


async def test_documented_model_versions_query_works_for_every_version(tmp_path, tiny_model_dir):
    from classifier.card import ModelCard, read_card
    from storage import repositories as repo

    path = await _legacy_database(tmp_path)  # versions written before model cards ...
    await upgrade_database(url_of(path))
    report = read_card(tiny_model_dir).dev
    fresh = [  # ... and after, one of each kind
        ModelCard("bootstrap", eval=report, dev=report),
        ModelCard("train", dev=report),
        ModelCard("retrain", eval=report, active_eval=report, dev=report),
    ]
    engine = create_engine(url_of(path))
    try:
        async with create_sessionmaker(engine).begin() as session:
            for i, card in enumerate(fresh, 10):
                await repo.register_model_version(
                    session,
                    f"v{i:04d}",
                    folder=f"/m/v{i:04d}",
                    backbone="embedding",
                    metrics=card.summary_metrics(),
                    manifest=card.summary_manifest(),
                )
    finally:
        await engine.dispose()
    [query] = _documented_queries()
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute(query)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()
    assert len(rows) == len(LEGACY) + 1 + len(fresh)
    with_figures = [r for r in rows if r["version"] != "v0005"]  # v0005 never had any
    assert all(isinstance(r["macro_f1"], float) for r in with_figures), rows
    assert {r["measured_on"] for r in with_figures} == {"eval", "dev"}


# --- 0005: model folders relative to MODEL_DIR ---------------------------------------------------
def _folders(path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT version, folder FROM model_versions").fetchall())
    finally:
        conn.close()


async def test_0005_stores_folders_inside_model_dir_relative_and_back(tmp_path):
    path = tmp_path / "s.db"
    models = tmp_path / "data" / "models"
    for name in ("v0001", "v0002"):
        (models / name).mkdir(parents=True)
    (tmp_path / "elsewhere" / "v0003").mkdir(parents=True)
    await upgrade_database(url_of(path), "0003")
    rows = {
        "v0001": str(models / "v0001"),  # inside MODEL_DIR
        "v0002": str(tmp_path / "old-data" / "models" / "v0002"),  # MODEL_DIR moved since
        "v0003": str(tmp_path / "elsewhere" / "v0003"),  # a folder outside MODEL_DIR
        "v0004": "/nowhere/v0004",  # gone everywhere: left for the operator to see
    }
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO model_versions (version, folder, backbone, status, created_at)"
        " VALUES (?, ?, 'embedding', 'retired', '2026-12-01 10:00:00')",
        list(rows.items()),
    )
    conn.commit()
    conn.close()

    await upgrade_database(url_of(path), "0005")  # without MODEL_DIR: nothing to go by
    assert _folders(path) == rows
    await downgrade_database(url_of(path), "0003")
    await upgrade_database(url_of(path), "0005", model_dir=models)
    assert _folders(path) == {**rows, "v0001": "v0001", "v0002": "v0002"}

    await downgrade_database(url_of(path), "0003", model_dir=models)
    back = _folders(path)
    assert back["v0001"] == str(models.resolve() / "v0001")
    assert back["v0002"] == str(models.resolve() / "v0002")  # where it really is now
    assert back["v0003"] == rows["v0003"] and back["v0004"] == rows["v0004"]
