"""`sentibot db upgrade`, `sentibot export --out FILE.csv`, `sentibot import FILE.csv`.

SQLAlchemy and Alembic are imported inside the handlers so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.commands.options import database
from bot.config import DEFAULT_LABELS
from bot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="database maintenance (migrations)")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    up = db_sub.add_parser(
        "upgrade",
        help="apply the database migrations (also done on every start)",
        description="Migrate DATABASE_URL to the newest schema this sentibot knows.",
    )
    up.set_defaults(handler=upgrade_command)
    db.set_defaults(handler=db_usage_command)

    export = subparsers.add_parser(
        "export",
        help="write the labelled messages to a CSV file",
        description="Write every message with a resolved label as CSV: text,label plus "
        "provenance columns (message_id, split, sources, n_labels, agreement, last_labelled_at).",
    )
    export.add_argument("--out", required=True, type=Path, help="CSV file to write")
    export.set_defaults(handler=export_command)

    imp = subparsers.add_parser(
        "import",
        help="import a text,label CSV file as labels",
        description="Import a CSV file with a header row holding `text` and `label` columns. "
        "Bad rows are reported by line number and nothing is imported.",
    )
    imp.add_argument("file", type=Path, help="CSV file with text,label columns")
    imp.add_argument(
        "--labels",
        default=",".join(DEFAULT_LABELS),
        help=f"allowed labels, comma-separated (default: {','.join(DEFAULT_LABELS)})",
    )
    imp.set_defaults(handler=import_command)


def db_usage_command(args: argparse.Namespace, settings) -> int:
    raise UsageError("say what to do with the database: sentibot db upgrade")


def upgrade_command(args: argparse.Namespace, settings) -> int:
    from storage.db import upgrade_database

    state = asyncio.run(upgrade_database(settings.db_url))
    print(f"database {state.url} is at migration {state.current} (newest: {state.head})")
    return 0


def export_command(args: argparse.Namespace, settings) -> int:
    out: Path = args.out
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as labels.csv")
    count = asyncio.run(_export(settings, out))
    print(f"wrote {count} labelled messages to {out}")
    return 0


async def _export(settings, out: Path) -> int:
    """The resolved labels (weighed by each labeller's reliability, as the bot exports them)."""
    from bot.learning.resolution import LabelResolver
    from bot.learning.served import ServedModel
    from storage import repositories as repo

    async with database(settings.db_url) as sessionmaker:
        served = ServedModel(sessionmaker, None)
        examples = (
            await LabelResolver(sessionmaker, served, settings.annotators).resolve()
        ).examples
    await asyncio.to_thread(repo.write_export_csv, out, examples)
    return len(examples)


def import_command(args: argparse.Namespace, settings) -> int:
    from storage import repositories as repo

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise UsageError("--labels needs at least one label")
    rows = repo.read_import_csv(args.file, labels)  # validates everything before any write
    result = asyncio.run(_import(settings.db_url, rows))
    print(
        f"imported {result.rows} rows from {args.file}: {result.created} new messages, "
        f"{result.changed} changed labels, {result.unchanged} already there"
    )
    return 0


async def _import(url: str, rows: list[tuple[str, str]]):
    from storage import repositories as repo

    async with database(url) as sessionmaker, sessionmaker.begin() as session:
        return await repo.import_labels(session, rows)
