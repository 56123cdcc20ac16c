"""Command-line pieces shared by several subcommands: number types, --backbone, epoch lines,
opening the database and the learning loop's registry, registering what a command wrote."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot import texts

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.learning.service import LearningService

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


class EpochPrinter:
    """`on_epoch` callback of the training commands: one line per epoch on stderr, with the
    elapsed time and an ETA (`texts.epoch_line`)."""

    def __init__(self) -> None:
        from classifier.progress import EpochClock

        self.clock = EpochClock()

    def __call__(self, epoch: int, epochs: int, dev_macro_f1: float) -> None:
        elapsed, eta, best = self.clock.tick(epoch, epochs, dev_macro_f1)
        line = texts.epoch_line(epoch, epochs, dev_macro_f1, elapsed, eta, best)
        print(line, file=sys.stderr, flush=True)


@asynccontextmanager
async def database(
    url: str, *, model_dir: Path | None = None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Migrate the database at `url`, then give a sessionmaker on it (disposed afterwards).
    `model_dir`: MODEL_DIR, for the migration that stores model folders relative to it.

    SQLAlchemy and Alembic are imported here: they cost about 0.3 s that `sentibot --help` and
    the commands without a database should not pay.
    """
    from storage.db import create_engine, create_sessionmaker, upgrade_database

    await upgrade_database(url, model_dir=model_dir)
    engine = create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def learning_service(settings) -> AsyncIterator[LearningService]:
    """The learning loop without a predictor (the CLI), on the migrated database: its
    `registry` and `versions` serve the `models` commands."""
    from bot.learning.service import LearningService

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        yield LearningService.create(settings, sessionmaker)


def check_database(settings) -> None:
    """Open (and migrate) DATABASE_URL now: a bad one fails before minutes of training."""

    async def check() -> None:
        async with database(settings.db_url, model_dir=settings.models_path):
            pass

    asyncio.run(check())


def register_written(settings, folder: Path) -> None:
    """Register a folder `train` / `bootstrap` wrote as a candidate and say how to serve it."""
    from bot.learning.errors import LearningError

    async def register() -> str:
        async with learning_service(settings) as learning:
            return (await learning.registry.register(folder)).version

    try:
        version = asyncio.run(register())
    except LearningError as exc:
        print(texts.NOT_REGISTERED.format(reason=exc), file=sys.stderr)
        return
    print(texts.REGISTERED.format(version=version))


def write_plot(path: Path, png: bytes) -> None:
    """Write a chart for `--plot FILE.png` (one clear line when that is not possible)."""
    from bot.errors import UsageError

    if path.is_dir():
        raise UsageError(f"--plot {path} is a folder; give a file name such as chart.png")
    try:
        path.write_bytes(png)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write ({exc.strerror or exc})") from None
    print(texts.PLOT_WRITTEN.format(path=path), file=sys.stderr)
