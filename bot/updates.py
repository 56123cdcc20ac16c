"""How the bot takes updates and talks to the Bot API: per-chat ordering and the HTTP pool.

Kept apart from `bot.app` (which imports the whole bot: torch, SQLAlchemy) so that
`benchmarks/bot.py` can give its echo-bot peer exactly these settings and nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT_UPDATES = 64
# Bot API connections. PTB's default pool (256) lets a burst of replies open dozens of
# connections, and httpcore's pool bookkeeping costs O(requests × connections) per request: with
# 16 connections the bot spent 5.5 ms CPU per message in benchmarks/bot.py, with 4 about 3.3 ms.
# 8 connections still carry ~80 requests/s at Telegram's ~100 ms round trip, above its 30
# messages/s flood limit; a request waits up to POOL_TIMEOUT_S for a free connection.
CONNECTION_POOL_SIZE = 8
POOL_TIMEOUT_S = 30.0


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat (a FIFO lock per chat id).

    The chat lock is taken before the concurrency slot, so one chat's backlog never holds slots
    that other chats could use.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await super().process_update(update, coroutine)
            return
        lock, users = self._locks.get(chat.id, (asyncio.Lock(), 0))
        self._locks[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            lock, users = self._locks[chat.id]
            if users <= 1:
                del self._locks[chat.id]
            else:
                self._locks[chat.id] = (lock, users - 1)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
