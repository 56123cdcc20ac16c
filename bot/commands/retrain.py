"""`sentibot retrain [--force] [--backbone embedding|bert]`: one training run from the terminal.

The same run as the bot's /retrain (worker process, promotion gate, model card, training_runs
row, audit entry), without Telegram. A promoted model becomes the database's active version; a
running bot notices within a minute and swaps it in (`bot.jobs.sync_model`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.commands.options import add_backbone_option
from bot.errors import OperatorError, UsageError


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


def retrain_command(args: argparse.Namespace, settings) -> int:
    outcome = asyncio.run(_retrain(settings, force=args.force, backbone=args.backbone))
    for line in outcome.summary_lines():
        print(line)
    if outcome.status == "skipped":
        return 0
    return 1 if outcome.status == "failed" else 0


def _progress(step) -> None:
    print(step.text(), file=sys.stderr, flush=True)


async def _retrain(settings, *, force: bool, backbone: str | None):
    from bot import learning as loop
    from classifier.device import resolve_device
    from storage.db import create_engine, create_sessionmaker, upgrade_database

    await upgrade_database(settings.db_url)
    engine = create_engine(settings.db_url)
    try:
        device = await asyncio.to_thread(resolve_device, settings.device)
        sessionmaker = create_sessionmaker(engine)
        learning = loop.LearningService(
            settings, sessionmaker, None, device=device, **loop.DEFAULT_OPTIONS
        )
        await learning.recover()
        try:
            return await learning.retrain(
                "cli", None, on_progress=_progress, force=force, backbone=backbone
            )
        except loop.TrainingInProgressError as exc:
            raise OperatorError(f"{exc}; try again when it has finished") from None
        except ValueError as exc:  # e.g. a backbone the classifier does not know
            raise UsageError(str(exc)) from None
    finally:
        await engine.dispose()
