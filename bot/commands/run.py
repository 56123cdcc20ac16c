"""`sentibot run` (the Telegram bot), `sentibot chat` (the same service in a terminal) and
`sentibot up` (the bot when TELEGRAM_BOT_TOKEN is set, the console chat otherwise).

The bot and the console chat (telegram, torch, SQLAlchemy) are imported inside the commands, so
`sentibot --help` stays fast."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys

from bot import texts
from bot.errors import SettingError

# What @BotFather hands out: "<bot id>:<35 characters of [A-Za-z0-9_-]>" (we accept 30+).
TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{30,}$")


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the Telegram bot (long polling; needs TELEGRAM_BOT_TOKEN)",
        description="Run the Telegram bot with long polling against TELEGRAM_BASE_URL.",
    )
    run.set_defaults(handler=run_command)
    chat = subparsers.add_parser(
        "chat",
        help="score messages in the terminal (offline, no token needed)",
        description=(
            "Each line typed (or piped in) is scored, stored as chat `console` and answered. "
            "Commands: /label <label>, /mood [24h|7d], /status, /help, /quit."
        ),
    )
    chat.set_defaults(handler=chat_command)
    up = subparsers.add_parser(
        "up",
        help="run the bot if TELEGRAM_BOT_TOKEN is set, else the console chat",
        description="Run the Telegram bot when TELEGRAM_BOT_TOKEN is set, else `sentibot chat`.",
    )
    up.set_defaults(handler=up_command)


def check_token(token: str | None) -> str:
    """The token, or SettingError with one clear line (never echoing the token itself)."""
    if not token:
        raise SettingError(
            "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and put it in .env "
            "(or use `sentibot chat` to try sentibot offline)"
        )
    if not TOKEN_PATTERN.match(token.strip()):
        raise SettingError(
            "TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<35 letters, digits, _ or ->, "
            "as @BotFather gives it"
        )
    return token.strip()


def run_command(args: argparse.Namespace, settings) -> int:
    """Run the bot until SIGINT / SIGTERM."""
    check_token(settings.telegram_bot_token)
    settings = settings.model_copy(
        update={"telegram_bot_token": settings.telegram_bot_token.strip()}
    )
    asyncio.run(_run_until_signal(settings))
    return 0


async def _run_until_signal(settings) -> None:
    from bot.app import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform / thread
            pass
    await serve(settings, stop=stop)


def chat_command(args: argparse.Namespace, settings) -> int:
    """The console chat over stdin/stdout."""
    from bot.console import run_console

    # Bytes that are not UTF-8 (a latin-1 file piped in) are read as U+FFFD: each line still
    # gets its answer, and the ones after it too.
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")
    return asyncio.run(run_console(settings, sys.stdin, sys.stdout))


def up_command(args: argparse.Namespace, settings) -> int:
    """`run` with a token, `chat` without one."""
    if settings.telegram_bot_token:
        return run_command(args, settings)
    print(texts.UP_WITHOUT_TOKEN, file=sys.stderr)
    return chat_command(args, settings)
