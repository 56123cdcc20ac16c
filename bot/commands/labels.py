"""`sentibot labels annotators`: every label source with its label count, reliability and
agreement with the others, and Krippendorff's alpha (what /status and /annotator show)."""

from __future__ import annotations

import argparse
import asyncio

from bot import texts
from bot.commands.options import database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "labels", help="the labels and who gave them", description="The labels and their sources."
    )
    sub = parser.add_subparsers(dest="labels_command", metavar="COMMAND", required=True)
    annotators = sub.add_parser(
        "annotators",
        help="each label source: labels, reliability (Dawid-Skene), agreement with the others",
    )
    annotators.set_defaults(handler=annotators_command)


def annotators_command(args: argparse.Namespace, settings) -> int:
    lines = asyncio.run(_annotators(settings))
    for line in lines:
        print(line)
    return 0


async def _annotators(settings) -> list[str]:
    from bot.learning.annotators import AnnotatorDesk, annotator_list
    from bot.learning.resolution import LabelResolver
    from bot.learning.served import ServedModel

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        served = ServedModel(sessionmaker, None, models_path=settings.models_path)
        resolver = LabelResolver(sessionmaker, served, settings.annotators)
        resolved = await resolver.resolve()
        listing = await AnnotatorDesk(sessionmaker).named(annotator_list(resolved))
    if not listing.rows:
        return ["No labels yet."]
    return texts.annotator_list_lines(listing)
