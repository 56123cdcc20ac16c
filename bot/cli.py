"""`sentibot` command line: a thin dispatcher over the subcommand modules in `bot/commands/`.

Each module exposes `register(subparsers)`, which adds its subcommands with
`set_defaults(handler=fn)`; `fn(args, settings) -> int` does the work. Modules import heavy
libraries (torch, SQLAlchemy, telegram) inside their handlers, so `sentibot --help` stays fast
(`python -X importtime -m bot --help` shows what it loads).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.commands import bootstrap, db, labels, model, retrain, run
from bot.config import Settings, get_settings
from bot.errors import CliError
from classifier.errors import ClassifierError
from storage.errors import StorageError

# Exception types that carry a message meant for the person at the terminal.
USER_FACING_ERRORS = (CliError, ClassifierError, StorageError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentibot",
        description="Sentiment-scoring Telegram bot that learns from its users' corrections.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    model.register(subparsers)  # train, eval, predict
    bootstrap.register(subparsers)  # bootstrap
    db.register(subparsers)  # db upgrade, export, import
    run.register(subparsers)  # run, chat, up
    retrain.register(subparsers)  # retrain
    labels.register(subparsers)  # labels annotators
    return parser


def _load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = str(first["loc"][0]).upper() if first.get("loc") else "settings"
        raise CliError(f"bad setting {setting}: {first['msg']}") from None


# Libraries that log every migration step or HTTP request at INFO; their INFO lines drown
# sentibot's own. LOG_LEVEL=DEBUG shows them again.
_CHATTY_LOGGERS = ("alembic", "httpx", "httpcore", "apscheduler")


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        settings = _load_settings()
        _configure_logging(settings.log_level)
        return int(args.handler(args, settings) or 0)
    except USER_FACING_ERRORS as exc:
        print(f"sentibot: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
