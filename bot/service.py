"""The application layer: what sentibot does, independent of Telegram.

Handlers, the console chat and the CLI all call `SentimentService`. It never imports `telegram`;
it talks to the classifier through the `Predictor` (micro-batched, off the event loop) and to the
database through storage's repositories, one unit of work per call
(`async with sessionmaker.begin()`; scored messages go through storage's group-commit
`ScoredMessageRecorder` when the runtime gives one). Scoring runs *before* the transaction
opens, so no write lock is held while the model works.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.trend import TrendPoint, build_trend
from classifier.predictor import Predictor
from storage import repositories as repo
from storage.errors import NotFoundError
from storage.recorder import ScoredMessageRecorder

log = logging.getLogger(__name__)

WINDOWS: dict[str, timedelta | None] = {
    "all": None,
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


@dataclass(frozen=True, slots=True)
class Author:
    """The person who wrote or labelled something (Telegram user id, or 0 for the console)."""

    id: int
    username: str | None = None
    first_name: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where a message was written: Telegram chat id and type (`private`, `group`, …)."""

    id: int
    type: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreResult:
    label: str
    confidence: float
    probs: dict[str, float]
    model_version: str
    message_id: int | None  # messages.id; None when nothing was stored (opted-out author)
    edited: bool = False

    @property
    def stored(self) -> bool:
        return self.message_id is not None


LabelOutcome = Literal["ok", "unchanged", "unknown_label", "not_found", "wrong_chat", "opted_out"]


@dataclass(frozen=True, slots=True)
class LabelResult:
    outcome: LabelOutcome
    label: str | None = None
    previous: str | None = None
    predicted: str | None = None  # the newest prediction, to redraw the scored reply
    confidence: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "unchanged")


@dataclass(frozen=True, slots=True)
class MoodReport:
    window: str
    counts: dict[str, int]  # label → messages, in the model's label order
    trend: tuple[TrendPoint, ...] = ()  # per hour (24h) or day (weeks for long spans)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class StatusReport:
    model_version: str | None
    backbone: str | None
    metrics: dict[str, Any] | None
    messages: int
    labels: int
    labelled_messages: int
    untrained_labels: int
    manifest: dict[str, Any] | None = None  # the version's data manifest (card summary)


@dataclass(frozen=True, slots=True)
class ForgetResult:
    messages: int
    labels: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    rows: int
    csv: bytes


class SentimentService:
    """Scoring, labels, mood, status, forget and export over one database and one predictor."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        predictor: Predictor,
        recorder: ScoredMessageRecorder | None = None,
        *,
        examples: Callable[[], Awaitable[list[repo.LabelledExample]]] | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.predictor = predictor
        # The labelled messages /export writes (the learning loop's resolved labels); None: the
        # plain majority label of each message.
        self.examples = examples
        # Group commit for scored messages (storage.recorder); None = one unit of work each.
        if recorder is not None and not recorder.skip_opted_out:
            raise ValueError("the service's recorder must skip opted-out authors")
        self.recorder = recorder

    @property
    def labels(self) -> list[str]:
        """The active model's label list (what buttons and /label offer)."""
        return list(self.predictor.classifier.labels)

    # --- scoring ---------------------------------------------------------------------------------
    async def score_message(
        self,
        chat: ChatRef,
        author: Author | None,
        text: str,
        *,
        telegram_message_id: int | None = None,
        received_at: datetime | None = None,
    ) -> ScoreResult:
        """Score `text`, store message + prediction (unless the author opted out), return both.

        An edit (same chat + Telegram message id) replaces the stored text and adds a prediction.
        """
        started = time.perf_counter()
        (prediction,) = await self.predictor.predict([text])
        latency_ms = (time.perf_counter() - started) * 1000
        probs = {k: float(v) for k, v in prediction.probs.items()}
        fields = dict(
            chat_id=chat.id,
            chat_type=chat.type,
            chat_title=chat.title,
            user_id=None if author is None else author.id,
            username=None if author is None else author.username,
            first_name=None if author is None else author.first_name,
            text=text,
            telegram_message_id=telegram_message_id,
            model_version=prediction.model_version,
            label=prediction.label,
            confidence=float(prediction.confidence),
            probs=probs,
            latency_ms=latency_ms,
            received_at=received_at,
        )
        if self.recorder is not None:  # shares a transaction with concurrent messages
            recorded = await self.recorder.record(**fields)  # None: the author opted out
        else:
            async with self.sessionmaker.begin() as session:
                recorded = None
                if author is None or not await repo.is_opted_out(session, author.id):
                    recorded = await repo.record_scored_message(session, **fields)
        message_id = None if recorded is None else recorded.message_id
        edited = recorded is not None and recorded.edited
        if edited:
            await self._drop_labels_of_old_text(message_id)
        return ScoreResult(
            label=prediction.label,
            confidence=float(prediction.confidence),
            probs=probs,
            model_version=prediction.model_version,
            message_id=message_id,
            edited=edited,
        )

    async def _drop_labels_of_old_text(self, message_id: int) -> None:
        """An edited message is a new text: labels given to the old one no longer describe it,
        and training must never pair them with the new one. They are removed (label_history keeps
        them); the fresh reply's buttons let people label the new text."""
        async with self.sessionmaker.begin() as session:
            for row in await repo.labels_for_message(session, message_id):
                await repo.remove_label(session, message_id, row.user_id)

    # --- labels ----------------------------------------------------------------------------------
    async def record_label(
        self,
        message_id: int,
        author: Author,
        label: str,
        *,
        chat_id: int | None = None,
        source: str = "inline",
    ) -> LabelResult:
        """Record `author`'s label for a stored message (replacing theirs); never raises for
        stale or forged input: the outcome says what happened.

        `chat_id`, when given, must be the message's chat (a button can't label another chat's
        message).
        """
        if label not in self.labels:
            return LabelResult("unknown_label")
        async with self.sessionmaker.begin() as session:
            if await repo.is_opted_out(session, author.id):
                return LabelResult("opted_out")
            message = await repo.get_message(session, message_id)
            if message is None:
                return LabelResult("not_found")
            if chat_id is not None and message.chat_id != chat_id:
                return LabelResult("wrong_chat")
            await repo.upsert_user(
                session, author.id, username=author.username, first_name=author.first_name
            )
            try:
                change = await repo.set_label(
                    session, message_id, author.id, label, source=source, allowed=self.labels
                )
            except NotFoundError:
                return LabelResult("not_found")
            prediction = await repo.latest_prediction(session, message_id)
        return LabelResult(
            "unchanged" if change.action == "unchanged" else "ok",
            label=label,
            previous=change.previous,
            predicted=None if prediction is None else prediction.label,
            confidence=None if prediction is None else prediction.confidence,
        )

    # --- reports ---------------------------------------------------------------------------------
    async def mood(self, chat_id: int, window: str = "all") -> MoodReport:
        """Messages per predicted label in one chat, over `all` time, the last `24h` or `7d`,
        and their trend (per hour over 24h, else per day)."""
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}")
        span, now = WINDOWS[window], datetime.now(UTC)
        since = None if span is None else now - span
        hourly = window == "24h"
        async with self.sessionmaker() as session:
            counts = await repo.mood_counts(session, chat_id, since=since)
            rows = await repo.mood_trend(session, chat_id, since=since, hourly=hourly)
        ordered = {label: int(counts.get(label, 0)) for label in self.labels}
        for label, count in counts.items():  # labels of older models, if any
            ordered.setdefault(label, int(count))
        trend = build_trend(rows, list(ordered), since=since, now=now, hourly=hourly)
        return MoodReport(window, ordered, tuple(trend))

    async def status(self) -> StatusReport:
        """Active model and its eval metrics, counts, labels not yet trained on."""
        async with self.sessionmaker() as session:
            # The served version's row: right after another process (CLI retrain, rollback)
            # activated a new one, the bot still serves the old one for up to a minute.
            active = await repo.get_model_version(session, self.predictor.version)
            totals = await repo.totals(session)
        return StatusReport(
            model_version=self.predictor.version,
            backbone=None if active is None else active.backbone,
            metrics=None if active is None else active.metrics,
            messages=totals.messages,
            labels=totals.labels,
            labelled_messages=totals.labelled_messages,
            untrained_labels=totals.new_labels,
            manifest=None if active is None else active.manifest,
        )

    # --- privacy and export ----------------------------------------------------------------------
    async def forget(self, user_id: int) -> ForgetResult:
        """Delete everything about this person; keep only their opt-out flag (so nothing of
        theirs is stored again until they send /start)."""
        async with self.sessionmaker.begin() as session:
            result = await repo.forget_user(session, user_id, opt_out=True)
        log.info("forgot user: %d message(s), %d label(s)", result.messages, result.labels)
        return ForgetResult(result.messages, result.labels)

    async def opt_in(self, author: Author) -> bool:
        """Clear the opt-out flag (sent /start again); True if the person had opted out."""
        async with self.sessionmaker.begin() as session:
            was_out = await repo.is_opted_out(session, author.id)
            if was_out:
                await repo.set_opted_out(session, author.id, False)
            return was_out

    async def is_opted_out(self, user_id: int) -> bool:
        async with self.sessionmaker() as session:
            return await repo.is_opted_out(session, user_id)

    async def export(self) -> ExportResult:
        """Every labelled message as CSV bytes (`text,label` plus provenance columns)."""
        with tempfile.TemporaryDirectory(prefix="sentibot-export-") as folder:
            path = Path(folder) / "labels.csv"
            # Read, then write the file after the session is closed: SQLite's single connection
            # (and its write lock) must not wait on file I/O.
            if self.examples is not None:
                examples = await self.examples()
            else:
                async with self.sessionmaker() as session:
                    examples = await repo.labelled_examples(session)
            if not examples:
                return ExportResult(0, b"")
            await asyncio.to_thread(repo.write_export_csv, path, examples)
            data = await asyncio.to_thread(path.read_bytes)
        return ExportResult(len(examples), data)
