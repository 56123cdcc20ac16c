"""Scheduled work on PTB's JobQueue: periodic retraining and keeping the served model in step.

- `retrain`: every RETRAIN_INTERVAL_MINUTES (0 disables it), a training run starts when at least
  RETRAIN_MIN_NEW_LABELS new resolved labels exist since the last run; the admins get the report.
  The run goes on in a task of its own, so a long run never overlaps the next tick (a tick while
  a run is going does nothing). After failed runs the schedule backs off (one interval, then
  doubling, at most a day; see `Retraining.scheduled_retry_at`), so a broken set-up does not
  message the admins at every tick.
- `sync-model`: every minute, if the database's active version differs from the served one (a
  `sentibot retrain` or rollback from another process), the bot loads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 60.0
TASKS_KEY = "learning_tasks"  # application.bot_data: background training tasks


def schedule(application: Application, settings: Any) -> None:
    """Add the jobs (called once while the application is built)."""
    queue = application.job_queue
    if queue is None:  # python-telegram-bot installed without the job-queue extra
        log.warning("no job queue (install python-telegram-bot[job-queue]): no scheduled retrain")
        return
    minutes = float(settings.retrain_interval_minutes)
    if minutes > 0:
        queue.run_repeating(
            scheduled_retrain, interval=minutes * 60, first=minutes * 60, name="retrain"
        )
    queue.run_repeating(
        sync_model, interval=SYNC_INTERVAL_S, first=SYNC_INTERVAL_S, name="sync-model"
    )


def start_background(application: Application, coro: Coroutine[Any, Any, Any], name: str) -> None:
    """Run a training run and its report beside the bot.

    Not `application.create_task`: `Application.stop()` waits for those, so stopping the bot
    would wait for the whole training run. These tasks end when `LearningService.close()` (run
    on shutdown) kills the worker; a reference is kept so they are not garbage-collected.
    """
    tasks: set[asyncio.Task] = application.bot_data.setdefault(TASKS_KEY, set())
    task = asyncio.get_running_loop().create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _learning(context: ContextTypes.DEFAULT_TYPE):
    runtime = context.application.bot_data.get("runtime")
    return None if runtime is None else runtime.learning


async def scheduled_retrain(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a run in the background when enough new labels have arrived."""
    learning = _learning(context)
    if learning is None or learning.training:
        return
    if await learning.new_label_count() < max(1, learning.settings.retrain_min_new_labels):
        return
    start_background(context.application, _run_and_report(context.application), "scheduled-retrain")


async def _run_and_report(application: Application) -> None:
    from bot.handlers.learning import send_report

    runtime = application.bot_data.get("runtime")
    if runtime is None or runtime.learning is None:
        return
    outcome = await runtime.learning.retrain_if_due()
    if outcome is None or outcome.status == "skipped" or runtime.learning.closing:
        return
    footer = None
    if outcome.status == "failed":
        retry_at = await runtime.learning.scheduled_retry_at()
        if retry_at is not None:
            footer = f"The schedule tries again after {retry_at:%Y-%m-%d %H:%M} UTC (or /retrain)."
    for admin_id in runtime.settings.admin_ids:
        try:
            await send_report(
                application.bot,
                admin_id,
                outcome,
                heading="Scheduled retraining",
                footer=footer,
            )
        except Exception:  # an admin who never opened a chat with the bot
            log.info("could not send the retrain report to admin %d", admin_id, exc_info=True)


async def sync_model(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Serve the database's active version if another process changed it."""
    learning = _learning(context)
    if learning is None:
        return
    version = await learning.sync_active_model()
    if version is not None:
        log.info("now serving %s (activated by another process)", version)
