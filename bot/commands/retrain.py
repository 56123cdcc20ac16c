"""`sentibot retrain [--force] [--backbone embedding|bert]`: one training run from the terminal.

The same run as the bot's /retrain (worker process, promotion gate, model card, training_runs
row, audit entry), without Telegram. A promoted model becomes the database's active version; a
running bot notices within a minute and swaps it in (`bot.jobs.sync_model`). Heavy imports
(torch, SQLAlchemy) happen inside the command, so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from bot import texts
from bot.commands.options import add_backbone_option, database
from bot.errors import OperatorError, UsageError
from bot.learning.errors import TrainingInProgressError

if TYPE_CHECKING:  # the learning loop itself (torch, SQLAlchemy) is imported by the command
    from bot.learning.data import LearningOptions
    from bot.learning.results import Progress, RetrainOutcome


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="retrain the model on the bootstrap corpus plus the labels collected so far",
        description="Train a candidate on the bootstrap corpus plus every resolved label's train "
        "split, compare it with the active model on the fixed eval split, and promote it only "
        "if it passes the gate (PROMOTION_TOLERANCE, PROMOTION_MAX_RECALL_DROP).",
    )
    parser.add_argument(
        "--force", action="store_true", help="train even when there are no new labels"
    )
    add_backbone_option(parser, "the active model's")
    parser.set_defaults(handler=retrain_command)


def retrain_command(
    args: argparse.Namespace, settings, *, learning_options: LearningOptions | None = None
) -> int:
    """One run; `learning_options` as for `Runtime.open` (tests train on a tiny corpus)."""
    outcome = asyncio.run(_retrain(settings, args.force, args.backbone, learning_options))
    for line in texts.retrain_summary(outcome):
        print(line)
    return 1 if outcome.status == "failed" else 0


def _progress(step: Progress) -> None:
    print(texts.progress_text(step), file=sys.stderr, flush=True)


async def _retrain(
    settings, force: bool, backbone: str | None, options: LearningOptions | None
) -> RetrainOutcome:
    from bot.learning.service import LearningService
    from classifier.device import resolve_device

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        device = await asyncio.to_thread(resolve_device, settings.device)
        learning = LearningService.create(settings, sessionmaker, device=device, options=options)
        await learning.retrainer.recover()
        try:
            return await learning.retrainer.retrain(
                "cli", None, on_progress=_progress, force=force, backbone=backbone
            )
        except TrainingInProgressError as exc:
            raise OperatorError(f"{exc}; try again when it has finished") from None
        except ValueError as exc:  # e.g. a backbone the classifier does not know
            raise UsageError(str(exc)) from None
