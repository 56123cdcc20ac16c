"""Command-line pieces shared by several subcommands: number types, --backbone, epoch lines,
opening the database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

BACKBONES = ("embedding", "bert")


def whole_number(minimum: int) -> Callable[[str], int]:
    """argparse type: a whole number ≥ `minimum`, refused with a usage error otherwise."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


positive_int = whole_number(1)
# numpy's seeded generator refuses negative seeds.
seed_int = whole_number(0)


def add_backbone_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument(
        "--backbone", choices=BACKBONES, default=None, help=f"encoder (default: {default_help})"
    )


def print_epoch(epoch: int, epochs: int, dev_macro_f1: float) -> None:
    """`on_epoch` callback of the training commands: one progress line on stderr."""
    print(f"epoch {epoch}/{epochs}: dev macro-F1 {dev_macro_f1:.3f}", file=sys.stderr)


@asynccontextmanager
async def database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Migrate the database at `url`, then give a sessionmaker on it (disposed afterwards).

    SQLAlchemy and Alembic are imported here: they cost about 0.3 s that `sentibot --help` and
    the commands without a database should not pay.
    """
    from storage.db import create_engine, create_sessionmaker, upgrade_database

    await upgrade_database(url)
    engine = create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
