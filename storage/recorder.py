"""Group commit for scored messages: concurrent `record()` calls share one transaction.

Recording a scored message is a handful of tiny statements; with SQLAlchemy async + aiosqlite
most of its cost is fixed per transaction and per statement (Python layers, thread hops to the
driver), not per row. `ScoredMessageRecorder` queues concurrent `record()` calls and writes
each batch in ONE unit of work with one set-based statement per table
(`storage.repositories.messages.record_many`; on SQLite 2 trips to aiosqlite's thread for the
whole batch), then answers every caller.

Guarantees, the same as one `record_scored_message` unit of work per call:
- a caller's `await record(...)` returns only after the transaction holding its rows has
  committed, so its record is atomic and as durable as any other commit (SQLite: WAL with
  `synchronous=NORMAL`);
- if a batch fails, its items are retried one by one, each in its own unit of work through
  `record_scored_message`: one bad item never takes down the others, and it gets its own
  exception;
- edits (same chat + Telegram message id, also twice in one batch) give what they give one by
  one: text replaced, a new prediction, `edited=True`;
- with `ScoredMessageRecorder(..., skip_opted_out=True)` (what the bot uses) the opt-out flag
  is checked in the same transaction as the write: an opted-out person's message is not
  stored, their user row is not touched, and `record` returns None.

No added latency: the writer takes a batch as soon as there is anything to write (no timer).
Whatever arrives while a batch is being written forms the next batch (at most `max_batch`), so
batches grow only when callers actually wait on each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import utcnow
from storage.repositories.messages import (
    BatchResultError,
    RecordedMessage,
    ScoredMessage,
    batch_supported,
    is_opted_out,
    record_many,
    record_scored_message,
    record_scored_messages,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 128


class RecorderClosedError(RuntimeError):
    """`record()` after `close()` (or after the writer stopped)."""


@dataclass(slots=True)
class _Pending:
    item: ScoredMessage
    future: asyncio.Future[RecordedMessage | None]


class ScoredMessageRecorder:
    """Records scored messages for many concurrent callers with group commit.

        recorder = ScoredMessageRecorder(sessionmaker)
        rec = await recorder.record(chat_id=..., chat_type=..., user_id=..., text=..., ...)
        await recorder.close()  # writes everything queued, then stops

    `record` takes the keyword arguments of `repositories.record_scored_message` and returns
    its `RecordedMessage` (or None: `skip_opted_out=True` and the author opted out). The
    writer task starts with the first call. Use one recorder per engine; never call `record`
    while holding a session of the same engine (the writer needs that connection).
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
        bind = sessionmaker.kw.get("bind")
        self._engine: AsyncEngine | None = bind if isinstance(bind, AsyncEngine) else None
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        # Counters for benchmarks and logs.
        self.batches = 0
        self.units = 0
        self.retried_batches = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def record(self, **fields: Any) -> RecordedMessage | None:
        """Record one scored message (the arguments of `record_scored_message`); returns after
        its transaction has committed. Raises what recording it alone would raise."""
        if self._closed:
            raise RecorderClosedError("the message recorder is closed")
        if fields.get("received_at") is None:  # when it arrived, not when its batch is written
            fields["received_at"] = utcnow()
        item = ScoredMessage(**fields)  # a wrong argument fails here, in the caller
        future: asyncio.Future[RecordedMessage | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="scored-message-recorder")
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop taking new records, write everything queued, and stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer

    async def __aenter__(self) -> ScoredMessageRecorder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the writer task -------------------------------------------------------------------------
    async def _run(self) -> None:
        batch: list[_Pending] = []
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = self._take_batch()
                if batch:
                    await self._write(batch)
                batch = []
        finally:
            # Cancelled, or a bug: nobody may wait forever on a record that will not happen.
            self._closed = True
            leftovers = batch + list(self._queue)
            self._queue.clear()
            for pending in leftovers:
                if not pending.future.done():
                    pending.future.set_exception(
                        RecorderClosedError("the message recorder stopped before writing this")
                    )

    def _take_batch(self) -> list[_Pending]:
        """Everything queued (up to max_batch), leaving out callers that gave up waiting."""
        batch: list[_Pending] = []
        while self._queue and len(batch) < self.max_batch:
            pending = self._queue.popleft()
            if not pending.future.done():  # done here = cancelled by its caller
                batch.append(pending)
        return batch

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            results = await self._write_batch(batch)
        except Exception as exc:
            if isinstance(exc, BatchResultError) and exc.committed:
                # Stored, but the ids did not come back: writing again would store them twice.
                log.error("recorded %d messages but could not read their ids: %s", len(batch), exc)
                for pending in batch:
                    _resolve(pending, error=exc)
                return
            # Retry even a batch of one: the caller then gets exactly what the one-by-one
            # path raises, whatever went wrong in the set-based statements.
            self.retried_batches += 1
            log.log(
                logging.WARNING if len(batch) > 1 else logging.DEBUG,
                "recording a batch of %d messages failed (%s: %s); retrying them one by one",
                len(batch),
                type(exc).__name__,
                exc,
            )
            for pending in batch:
                await self._write_one(pending)
            return
        # Committed: only now may the callers see their results.
        self.batches += 1
        self.units += len(batch)
        for pending, result in zip(batch, results, strict=True):
            _resolve(pending, result=result)

    async def _write_batch(self, batch: list[_Pending]) -> list[RecordedMessage | None]:
        """The batch in one unit of work: straight on the engine's connection when the dialect
        has the set-based path (an ORM session would only add overhead), else in a session."""
        items = [p.item for p in batch]
        engine = self._engine
        if engine is not None and batch_supported(engine.dialect.name):
            async with engine.begin() as conn:
                # commit=True: on SQLite the COMMIT rides with the last statement's trip.
                return await conn.run_sync(
                    record_many, items, skip_opted_out=self.skip_opted_out, commit=True
                )
        async with self.sessionmaker.begin() as session:
            return await record_scored_messages(session, items, skip_opted_out=self.skip_opted_out)

    async def _write_one(self, pending: _Pending) -> None:
        """One item in its own unit of work, as `record_scored_message` callers do it."""
        item = pending.item
        try:
            async with self.sessionmaker.begin() as session:
                if (
                    self.skip_opted_out
                    and item.user_id is not None
                    and await is_opted_out(session, item.user_id)
                ):
                    result = None
                else:
                    result = await record_scored_message(session, **item.fields())
        except Exception as exc:
            _resolve(pending, error=exc)
        else:
            self.batches += 1
            self.units += 1
            _resolve(pending, result=result)


def _resolve(
    pending: _Pending, *, result: RecordedMessage | None = None, error: BaseException | None = None
) -> None:
    if pending.future.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result)
