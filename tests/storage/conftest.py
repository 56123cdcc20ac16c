"""Fixtures for storage tests: a migrated SQLite file per test (copied from one template)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from storage import repositories as repo
from storage.db import create_engine, create_sessionmaker, upgrade_database

PROBS_POS = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head; each test gets a copy (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_template: Path) -> Path:
    path = tmp_path / "sentibot.db"
    shutil.copyfile(migrated_template, path)
    return path


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite+aiosqlite:///{db_path}"


@pytest.fixture
async def engine(db_url: str):
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sm(engine):
    return create_sessionmaker(engine)


async def record(
    session,
    *,
    chat_id: int = -100,
    user_id: int | None = 11,
    tg_id: int | None = None,
    text: str = "hello there",
    probs: dict[str, float] | None = None,
    version: str = "v0001",
    chat_type: str = "group",
):
    """Record one scored message with sensible defaults; returns RecordedMessage."""
    probs = probs or PROBS_POS
    label = max(probs, key=probs.get)
    return await repo.record_scored_message(
        session,
        chat_id=chat_id,
        chat_type=chat_type,
        user_id=user_id,
        text=text,
        model_version=version,
        label=label,
        confidence=probs[label],
        probs=probs,
        telegram_message_id=tg_id,
        username=f"user{user_id}" if user_id is not None else None,
    )
