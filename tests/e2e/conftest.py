"""Fixtures that run the real bot (`bot.app.serve`, what `sentibot run` runs) against the fake
Telegram Bot API server, with a real SQLite file and the tiny real model.

    async def test_something(bot):              # default settings, bot already polling
        msg = bot.fake.user_says(bot.private(ALICE), ALICE, "I love it")
        reply = await bot.fake.next_from_bot(ALICE["id"])

    async def test_reply_mode(start_bot):       # custom settings
        async with start_bot(group_mode="reply") as bot:
            ...

`bot.runtime` is the live `Runtime` (sessionmaker, predictor, service) for checking the database.
Errors the bot logs while handling updates fail the test unless it sets `bot.expect_errors`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app import serve
from bot.config import Settings
from bot.learning.data import LearningOptions
from tests.e2e.fake_telegram import BotMessage, FakeTelegram

ALICE = FakeTelegram.user(1001, "Alice", "alice")
BOB = FakeTelegram.user(1002, "Bob", "bob")
ADMIN = FakeTelegram.user(9001, "Ada", "ada_admin")
ANNOTATOR = FakeTelegram.user(9002, "Nina", "nina_labels")
GROUP = FakeTelegram.group_chat(-100123, "Test group")


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class BotHandle:
    """A running bot plus the fake server it talks to."""

    fake: FakeTelegram
    settings: Settings
    application: Any
    expect_errors: bool = False
    errors: list[logging.LogRecord] = field(default_factory=list)

    @property
    def runtime(self):  # bot.runtime.Runtime
        return self.application.bot_data["runtime"]

    @staticmethod
    def private(user: dict) -> dict:
        return FakeTelegram.private_chat(user)

    async def say(self, user: dict, text: str, chat: dict | None = None) -> BotMessage:
        """`user` writes `text` (in their private chat by default); return the bot's next reply."""
        chat = chat or self.private(user)
        self.fake.user_says(chat, user, text)
        return await self.fake.next_from_bot(chat["id"])


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    """Poll an async `check()` until it returns something truthy (for database state)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition still false after {timeout}s: {result!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake
    assert not fake.unknown_calls, f"the bot called methods the fake lacks: {fake.unknown_calls}"


@pytest.fixture
def make_settings(
    tmp_path: Path, tiny_model_dir: Path, fake_telegram: FakeTelegram
) -> Callable[..., Settings]:
    """Settings for a bot on the fake server; the tiny model is copied into a fresh MODEL_DIR
    (the first start registers it as the active version)."""

    def make(**overrides: Any) -> Settings:
        data_dir = tmp_path / "data"
        model_dir = data_dir / "models"
        if not model_dir.exists():
            shutil.copytree(tiny_model_dir, model_dir / tiny_model_dir.name)
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "model_dir": model_dir,
            "device": "cpu",
            "telegram_bot_token": fake_telegram.token,
            "telegram_base_url": fake_telegram.base_url,
            "telegram_base_file_url": fake_telegram.base_file_url,
            "admin_ids": [ADMIN["id"]],
            "annotator_ids": [ANNOTATOR["id"]],
            "group_mode": "silent",
            "retrain_interval_minutes": 0,
            "log_level": "INFO",
            # The queue's diversity rules have their own tests; the others see the plain order.
            "queue_max_per_author_hour": 0,
            "queue_similarity": 1.01,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def learning_options() -> LearningOptions | None:
    """How the bot's learning loop trains (None: production's; tests/learning passes a tiny one)."""
    return None


@pytest.fixture
def start_bot(
    make_settings: Callable[..., Settings],
    fake_telegram: FakeTelegram,
    learning_options: LearningOptions | None,
) -> Callable[..., AbstractAsyncContextManager[BotHandle]]:
    """`async with start_bot(**setting_overrides) as bot:` runs `serve()` until the block ends."""

    @asynccontextmanager
    async def start(*, rate_limit: bool = True, **overrides: Any) -> AsyncIterator[BotHandle]:
        settings = make_settings(**overrides)
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        collector = _ErrorCollector()
        logging.getLogger("bot").addHandler(collector)
        task = asyncio.create_task(
            serve(
                settings,
                stop=stop,
                on_started=started.set_result,
                rate_limit=rate_limit,
                learning_options=learning_options,
            )
        )
        try:
            done, _ = await asyncio.wait({task, started}, timeout=60, return_when="FIRST_COMPLETED")
            if task in done:
                task.result()  # raises what stopped the bot from starting
            assert started in done, "the bot did not start within 60 s"
            handle = BotHandle(fake_telegram, settings, started.result(), errors=collector.records)
            yield handle
            if not handle.expect_errors:
                messages = [r.getMessage() for r in collector.records]
                assert not collector.records, f"the bot logged errors: {messages}"
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=30)
            finally:
                logging.getLogger("bot").removeHandler(collector)

    return start


@pytest.fixture
async def bot(start_bot) -> AsyncIterator[BotHandle]:
    """The bot with default test settings, polling the fake server."""
    async with start_bot() as handle:
        yield handle
