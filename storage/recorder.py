"""Group commit for scored messages: concurrent `record()` calls share one transaction.

Recording a scored message is four tiny statements, and with SQLAlchemy async + aiosqlite most
of their cost is fixed per statement and per transaction, not per row. The recorder queues
concurrent `record()` calls; one writer task takes whatever is waiting (at most `max_batch`) and
writes it in ONE unit of work with one set-based statement per table
(`storage.repositories.batch.record_scored_messages`), then answers every caller. No timer: a
lone message is written at once, and batches grow only while callers wait on each other.

Guarantees, the same as one `record_scored_message` unit of work per call:
- a caller's `await record(...)` returns only after the transaction holding its rows committed;
- if a batch fails, each of its items is written again in a unit of work of its own: one bad
  item never takes down the others, and it gets its own exception;
- edits (same chat + Telegram message id, also twice in one batch) behave as one by one;
- with `skip_opted_out=True` (what the bot uses) the opt-out flag is read in the same
  transaction as the write: an opted-out person's message is not stored, their user row is not
  touched, and `record` returns None.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import utcnow
from storage.repositories.batch import ScoredMessage, record_scored_messages
from storage.repositories.messages import RecordedMessage

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 128

Pending = tuple[ScoredMessage, asyncio.Future[RecordedMessage | None]]


class RecorderClosedError(RuntimeError):
    """`record()` after `close()` (or after the writer stopped)."""


class ScoredMessageRecorder:
    """Records scored messages for many concurrent callers with group commit.

        recorder = ScoredMessageRecorder(sessionmaker, skip_opted_out=True)
        rec = await recorder.record(chat_id=..., chat_type=..., user_id=..., text=..., ...)
        await recorder.close()  # writes everything queued, then stops

    `record` takes the keyword arguments of `repositories.record_scored_message` and returns
    its `RecordedMessage` (None: `skip_opted_out` and the author opted out). Use one recorder
    per engine; never call `record` while holding a session of the same engine (on SQLite the
    writer needs that connection).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        skip_opted_out: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.sessionmaker = sessionmaker
        self.skip_opted_out = skip_opted_out
        self.max_batch = max_batch
        self.batches = 0  # transactions committed (for benchmarks and tests)
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()  # None: closed, stop
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def record(self, **fields: Any) -> RecordedMessage | None:
        """Record one scored message; returns after its transaction committed. Raises what
        recording it alone would raise."""
        if self._closed:
            raise RecorderClosedError("the message recorder is closed")
        if fields.get("received_at") is None:  # when it arrived, not when its batch is written
            fields["received_at"] = utcnow()
        item = ScoredMessage(**fields)  # a wrong argument fails here, in the caller
        future: asyncio.Future[RecordedMessage | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="scored-message-recorder")
        return await future

    async def close(self) -> None:
        """Stop taking new records, write everything queued, and stop the writer."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)
        if self._writer is not None:
            await self._writer

    async def __aenter__(self) -> ScoredMessageRecorder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self) -> None:
        batch: list[Pending | None] = []
        stop = False
        try:
            while not stop:
                batch = [await self._queue.get()]
                while len(batch) < self.max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                stop = batch[-1] is None  # close() queues None, and nothing comes after it
                # A future already done here belongs to a caller that was cancelled.
                await self._write([p for p in batch if p is not None and not p[1].done()])
        finally:
            # Cancelled, or a bug: nobody may wait forever on a record that will not happen.
            self._closed = True
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stopped = RecorderClosedError("the message recorder stopped before writing this")
            for pending in batch:
                if pending is not None and not pending[1].done():
                    pending[1].set_exception(stopped)

    async def _write(self, batch: list[Pending]) -> None:
        if not batch:
            return
        try:
            async with self.sessionmaker.begin() as session:
                items = [item for item, _ in batch]
                results = await record_scored_messages(
                    session, items, skip_opted_out=self.skip_opted_out
                )
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            log.warning(
                "recording %d messages together failed (%s: %s); writing each on its own",
                len(batch),
                type(exc).__name__,
                exc,
            )
            for pending in batch:
                await self._write([pending])
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)  # only now, after the commit


def _settle(
    future: asyncio.Future[RecordedMessage | None],
    *,
    result: RecordedMessage | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
