"""`sentibot db upgrade`: run the database migrations (they also run on every start).

SQLAlchemy and Alembic are imported inside the handler so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio

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


def db_usage_command(args: argparse.Namespace, settings) -> int:
    raise UsageError("say what to do with the database: sentibot db upgrade")


def upgrade_command(args: argparse.Namespace, settings) -> int:
    from storage.db import upgrade_database

    state = asyncio.run(upgrade_database(settings.db_url, model_dir=settings.models_path))
    print(f"database {state.url} is at migration {state.current} (newest: {state.head})")
    return 0
