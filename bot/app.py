"""The Telegram application: factory, error handler, and the polling loop.

`build_application(settings)` wires PTB's `Application`: base URLs from settings (a self-hosted
Bot API server or the tests' fake), `AIORateLimiter` for Telegram's flood limits, HTML as the
default parse mode, the handler modules (each imported here by name, registered in order), the
scheduled jobs, and the role fallbacks. `serve(settings)` is what `sentibot run` runs: PTB's own
lifecycle (`async with application:`, `updater.start_polling()`, `start()`) around the `Runtime`
(database, model, services), as a coroutine, so tests run it inside their own event loop.

Updates of different chats are processed concurrently (so the predictor can batch them and the
database writes overlap), while updates of one chat stay in order (`bot.updates`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bot import jobs, texts
from bot.config import Settings
from bot.errors import OperatorError
from bot.handlers import (
    admin,
    chat,
    feedback,
    forget,
    labeling,
    learning,
    mood,
    nontext,
    start,
    trust,
)
from bot.handlers.common import COMMANDS_KEY, CommandInfo, is_private, role_ids
from bot.learning.data import LearningOptions
from bot.runtime import Runtime
from bot.updates import CONNECTION_POOL_SIZE, POOL_TIMEOUT_S, PerChatUpdateProcessor

log = logging.getLogger(__name__)

ROLE_DENIED = {"admin": texts.ADMINS_ONLY, "annotator": texts.ANNOTATORS_ONLY}


def build_application(settings: Settings, *, rate_limit: bool = True) -> Application:
    """The configured PTB application (nothing is opened until `serve` runs it)."""
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
        .defaults(Defaults(parse_mode=ParseMode.HTML))  # every text comes from bot.texts
    )
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))  # retry after a 429
    application = builder.build()
    # Within PTB's handler group 0 the first match wins: commands before catch-alls.
    start.register(application, settings)  # /start, /help
    chat.register(application, settings)  # text messages and edits: score, store, reply
    feedback.register(application, settings)  # fb:<message_id>:<label> buttons
    mood.register(application, settings)  # /mood [24h|7d]
    forget.register(application, settings)  # /forget + confirmation
    admin.register(application, settings)  # /status, /export (admins)
    labeling.register(application, settings)  # /label queue session + q:… buttons (annotators)
    learning.register(application, settings)  # /retrain, /models, /rollback (admins)
    trust.register(application, settings)  # /review (annotators), /annotator (admins)
    nontext.register(application, settings)  # stickers, photos, voice in private chats
    jobs.schedule(application, settings)  # scheduled retraining, following the active model
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
        await update.effective_message.reply_text(text)

    return denied


async def _unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point to /help for commands the bot doesn't have."""
    await update.effective_message.reply_text(texts.UNKNOWN_COMMAND)


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
    learning_options: LearningOptions | None = None,
) -> None:
    """Run the bot with long polling until `stop` is set (or the task is cancelled).

    `learning_options` go to `Runtime.open` (tests train on a tiny corpus).
    """
    unprotect = _protect_token(settings.telegram_bot_token or "")  # PTB logs its URLs
    try:
        application = build_application(settings, rate_limit=rate_limit)
        async with application:  # initialize (getMe checks token and server) … shutdown
            runtime = await Runtime.open(settings, learning_options=learning_options)
            await _poll(application, runtime, stop or asyncio.Event(), on_started)
    except InvalidToken:
        raise OperatorError("TELEGRAM_BOT_TOKEN was rejected by the Bot API server") from None
    except NetworkError as exc:
        raise OperatorError(
            f"cannot reach the Bot API at TELEGRAM_BASE_URL ({settings.telegram_base_url}): {exc}"
        ) from None
    finally:
        unprotect()


async def _poll(
    application: Application,
    runtime: Runtime,
    stop: asyncio.Event,
    on_started: Callable[[Application], Awaitable[None] | None] | None,
) -> None:
    """Publish the menus, poll and process updates until `stop`; then stop both and close the
    runtime (after the last handler finished, before PTB shuts the HTTP client down)."""
    application.bot_data["runtime"] = runtime
    try:
        await _set_commands(application, runtime.settings)
        await application.updater.start_polling(drop_pending_updates=False)
        await application.start()
        log.info("sentibot is running as @%s", application.bot.username)
        if on_started is not None:
            started = on_started(application)
            if started is not None:
                await started
        await stop.wait()
    finally:
        try:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
        finally:
            await application.bot_data.pop("runtime").close()
