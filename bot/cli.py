"""`sentibot` command line: a thin dispatcher over the subcommand modules in `bot/commands/`.

Each module exposes `register(subparsers)`, which adds its subcommands with
`set_defaults(handler=fn)`; `fn(args, settings) -> int` does the work. Modules import heavy
libraries (torch, SQLAlchemy, telegram) inside their handlers, so `sentibot --help` stays fast
(`python -X importtime -m bot --help` shows what it loads).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot import texts
from bot.commands import bootstrap, data, db, labels, models, predict, retrain, run, train
from bot.config import Settings, get_settings
from bot.errors import CliError, SettingError
from classifier.errors import ClassifierError
from classifier.progress import configure as configure_progress
from storage.errors import StorageError

# Exception types that carry a message meant for the person at the terminal.
USER_FACING_ERRORS = (CliError, ClassifierError, StorageError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentibot",
        description="Sentiment-scoring Telegram bot that learns from its users' corrections.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.register(subparsers)  # train
    predict.register(subparsers)  # eval, predict
    models.register(subparsers)  # models list | show | activate | delete | rollback
    bootstrap.register(subparsers)  # bootstrap
    db.register(subparsers)  # db upgrade
    data.register(subparsers)  # export, import
    run.register(subparsers)  # run, chat, up
    retrain.register(subparsers)  # retrain
    labels.register(subparsers)  # labels annotators
    return parser


def _load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise SettingError(setting_error(exc)) from None
    except SettingsError as exc:  # e.g. an unreadable .env
        raise SettingError(f"{exc}; {texts.SETTING_HINT}") from None


def setting_error(exc: ValidationError) -> str:
    """One line for the first bad setting: its name, the value given, what is wrong, the fix."""
    errors = exc.errors()
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    error = (first.get("ctx") or {}).get("error")
    if first.get("type") == "value_error" and error is not None:
        return f"{error}{more}"  # our validators name the setting and the fix themselves
    setting = str(first["loc"][0]).upper() if first.get("loc") else "settings"
    given = first.get("input")
    shown = "" if given is None or isinstance(given, dict) else f"={str(given)[:60]!r}"
    message = str(first["msg"])
    message = message[:1].lower() + message[1:]
    return f"bad setting {setting}{shown}: {message}{more}; {texts.SETTING_HINT}"


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
        configure_progress(every_seconds=settings.progress_log_seconds)
        return int(args.handler(args, settings) or 0)
    except USER_FACING_ERRORS as exc:
        print(f"sentibot: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `sentibot predict - | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
