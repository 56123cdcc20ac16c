"""The Telegram application: factory, lifecycle hooks, error handler, and the polling loop.

`build_application(settings)` wires PTB's `Application`: base URLs from settings (a self-hosted
Bot API server or the tests' fake), `AIORateLimiter` for Telegram's flood limits, the handler
modules, role fallbacks, and `post_init` / `post_shutdown` hooks that open and close the
`Runtime` (database, model, predictor); after it opens, each handler module's optional
`async on_startup(application, runtime)` runs (the learning loop attaches itself there).
`serve(settings)` is what `sentibot run` runs: the same
steps as PTB's `run_polling`, but as a coroutine, so tests run it inside their own event loop.

Updates of different chats are processed concurrently (so the predictor can batch them and the
database writes overlap), while updates of one chat stay in order (`PerChatUpdateProcessor`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import texts
from bot.config import Settings
from bot.errors import OperatorError
from bot.handlers import HANDLER_MODULES
from bot.handlers.common import COMMANDS_KEY, CommandInfo, is_private, reply, role_ids
from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_CONCURRENT_UPDATES = 64
# Bot API connections. PTB's default pool (256) lets a burst of replies open dozens of
# connections, and httpcore's pool bookkeeping costs O(requests × connections) per request: with
# 16 connections the bot spent 5.5 ms CPU per message in benchmarks/bot.py, with 4 about 3.3 ms.
# 8 connections still carry ~80 requests/s at Telegram's ~100 ms round trip, above its 30
# messages/s flood limit; a request waits up to POOL_TIMEOUT_S for a free connection.
CONNECTION_POOL_SIZE = 8
POOL_TIMEOUT_S = 30.0
ROLE_DENIED = {"admin": texts.ADMINS_ONLY, "annotator": texts.ANNOTATORS_ONLY}


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat (a FIFO lock per chat id).

    The chat lock is taken before the concurrency slot, so one chat's backlog never holds slots
    that other chats could use.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await super().process_update(update, coroutine)
            return
        lock, users = self._locks.get(chat.id, (asyncio.Lock(), 0))
        self._locks[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await super().process_update(update, coroutine)
        finally:
            lock, users = self._locks[chat.id]
            if users <= 1:
                del self._locks[chat.id]
            else:
                self._locks[chat.id] = (lock, users - 1)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def build_application(settings: Settings, *, rate_limit: bool = True) -> Application:
    """The configured PTB application (nothing is opened until `post_init` runs)."""
    if not settings.telegram_bot_token:
        raise OperatorError("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .concurrent_updates(PerChatUpdateProcessor())
        .connection_pool_size(CONNECTION_POOL_SIZE)
        .pool_timeout(POOL_TIMEOUT_S)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))  # retry after a 429
    application = builder.build()
    application.bot_data["settings"] = settings
    for name in HANDLER_MODULES:
        importlib.import_module(name).register(application, settings)
    _add_fallbacks(application, settings)
    application.add_error_handler(on_error)
    return application


def _add_fallbacks(application: Application, settings: Settings) -> None:
    """After every module: "admins only" for gated commands, "unknown command" in private."""
    commands: list[CommandInfo] = application.bot_data.get(COMMANDS_KEY, [])
    for role, text in ROLE_DENIED.items():
        names = [c.name for c in commands if c.role == role]
        if names:
            application.add_handler(
                CommandHandler(names, _denied(text), filters=filters.UpdateType.MESSAGE)
            )
    unknown = filters.COMMAND & filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    application.add_handler(MessageHandler(unknown, _unknown_command))


def _denied(text: str) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    async def denied(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Tell a person without the role that the command is not for them."""
        await reply(update, text)

    return denied


async def _unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point to /help for commands the bot doesn't have."""
    await reply(update, texts.UNKNOWN_COMMAND)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error; in a private chat, tell the person something went wrong."""
    if isinstance(context.error, Forbidden):  # they blocked the bot or left: nothing to fix
        log.info("cannot answer (%s)", context.error)
        return
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or not is_private(update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.GENERIC_ERROR)
        elif update.effective_chat is not None:
            await update.effective_chat.send_message(texts.GENERIC_ERROR)
    except TelegramError:
        log.warning("could not tell the user about the error", exc_info=True)


async def _post_init(application: Application) -> None:
    """Open the runtime (database, model, predictor) and publish the command menus."""
    settings: Settings = application.bot_data["settings"]
    runtime = await Runtime.open(settings)
    application.bot_data["runtime"] = runtime
    # Handler modules may attach services to the runtime (the learning loop does).
    for name in HANDLER_MODULES:
        on_startup = getattr(importlib.import_module(name), "on_startup", None)
        if on_startup is not None:
            await on_startup(application, runtime)
    await _set_commands(application, settings)


async def _post_shutdown(application: Application) -> None:
    runtime: Runtime | None = application.bot_data.pop("runtime", None)
    if runtime is not None:
        await runtime.close()


async def _set_commands(application: Application, settings: Settings) -> None:
    """Everyone's menu by default; admins' and annotators' private chats get theirs too."""
    commands: list[CommandInfo] = application.bot_data.get(COMMANDS_KEY, [])

    def menu(*roles: str) -> list[BotCommand]:
        return [BotCommand(c.name, c.description) for c in commands if c.role in roles]

    await application.bot.set_my_commands(menu("everyone"), scope=BotCommandScopeDefault())
    scoped = {uid: menu("everyone", "annotator") for uid in role_ids(settings, "annotator") or ()}
    scoped |= {uid: menu("everyone", "annotator", "admin") for uid in settings.admin_ids}
    for user_id, user_menu in scoped.items():
        try:
            scope = BotCommandScopeChat(chat_id=user_id)
            await application.bot.set_my_commands(user_menu, scope=scope)
        except TelegramError as exc:  # that person never opened a chat with the bot
            log.info("no command menu for user %d: %s", user_id, exc)


class RedactToken(logging.Filter):
    """Replace the bot token in log lines (httpx logs request URLs, which contain it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<TOKEN>"), ()
        return True


def _protect_token(token: str) -> Callable[[], None]:
    """Keep the token out of every log handler; returns the undo function."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    redact = RedactToken(token)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(redact)

    return undo


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Application], Awaitable[None] | None] | None = None,
    rate_limit: bool = True,
) -> None:
    """Run the bot with long polling until `stop` is set (or the task is cancelled).

    The same sequence as PTB's `run_polling`: initialize, post_init, start polling, start; on the
    way out stop the updater, stop, post_stop, shutdown, post_shutdown.
    """
    unprotect = _protect_token(settings.telegram_bot_token or "")  # PTB logs its URLs
    try:
        application = build_application(settings, rate_limit=rate_limit)
        await _serve(application, settings, stop or asyncio.Event(), on_started)
    finally:
        unprotect()


async def _serve(
    application: Application,
    settings: Settings,
    stop: asyncio.Event,
    on_started: Callable[[Application], Awaitable[None] | None] | None,
) -> None:
    try:
        await application.initialize()
    except InvalidToken:
        raise OperatorError("TELEGRAM_BOT_TOKEN was rejected by the Bot API server") from None
    except NetworkError as exc:
        raise OperatorError(
            f"cannot reach the Bot API at TELEGRAM_BASE_URL ({settings.telegram_base_url}): {exc}"
        ) from None
    try:
        await application.post_init(application)
        await application.updater.start_polling(drop_pending_updates=False)
        await application.start()
        log.info("sentibot is running as @%s", application.bot.username)
        if on_started is not None:
            started = on_started(application)
            if started is not None:
                await started
        await stop.wait()
    finally:
        await _shutdown(application)


async def _shutdown(application: Application) -> None:
    try:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
            if application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        await application.post_shutdown(application)
