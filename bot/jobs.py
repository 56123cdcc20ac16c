"""Scheduled work on PTB's JobQueue: periodic retraining and keeping the served model in step.

- `retrain`: every RETRAIN_INTERVAL_MINUTES (0 disables it) a tick asks the `Retrainer` for a
  scheduled run (`retrain_if_due`: enough new labels, no back-off after failures); the admins get
  the report. The run goes on in a task of its own, so a long run never overlaps the next tick
  (a tick while a run is going does nothing). After failed runs the schedule backs off (one
  interval, then doubling, at most a day; see `Retrainer.scheduled_retry_at`), so a broken
  set-up does not message the admins at every tick.
- `sync-model`: every minute, if the database's active version differs from the served one (a
  `sentibot retrain` or rollback from another process), the bot loads it.
"""

from __future__ import annotations

import logging

from telegram.ext import Application, ContextTypes

from bot import texts
from bot.config import Settings
from bot.handlers.common import runtime
from bot.handlers.learning import send_report, start_background, tell_admins_of_flags

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 60.0


def schedule(application: Application, settings: Settings) -> None:
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


async def scheduled_retrain(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a scheduled run in the background (it decides whether one is due)."""
    if not runtime(context).learning.retrainer.training:
        start_background(context.application, _run_and_report(context.application), "scheduled")


async def _run_and_report(application: Application) -> None:
    rt = application.bot_data["runtime"]
    retrainer = rt.learning.retrainer
    outcome = await retrainer.retrain_if_due()
    if outcome is None or retrainer.closing:
        return
    footer = None
    if outcome.status == "failed":
        retry_at = await retrainer.scheduled_retry_at()
        footer = None if retry_at is None else texts.RETRY_FOOTER.format(at=retry_at)
    for admin_id in rt.settings.admin_ids:
        try:
            await send_report(
                application.bot, admin_id, outcome, heading=texts.SCHEDULED_HEADING, footer=footer
            )
        except Exception:  # an admin who never opened a chat with the bot
            log.info("could not send the retrain report to admin %d", admin_id, exc_info=True)
    await tell_admins_of_flags(application.bot, rt.settings.admin_ids, outcome)


async def sync_model(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Serve the database's active version if another process changed it."""
    version = await runtime(context).learning.versions.sync_active_model()
    if version is not None:
        log.info("now serving %s (activated by another process)", version)
