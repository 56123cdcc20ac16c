"""Telegram handlers, one module per feature; each exposes `register(application, settings)`.

`bot.app` imports the modules in this order and calls `register`; within PTB's handler group 0
the first matching handler wins, so modules with commands come before catch-alls, and `bot.app`
adds the "admins only" / unknown-command fallbacks after all of them.
"""

HANDLER_MODULES: tuple[str, ...] = (
    "bot.handlers.start",  # /start, /help
    "bot.handlers.chat",  # text messages and edits: score, store, reply
    "bot.handlers.feedback",  # fb:<message_id>:<label> buttons
    "bot.handlers.mood",  # /mood [24h|7d]
    "bot.handlers.forget",  # /forget + confirmation
    "bot.handlers.admin",  # /status, /export (admins)
    "bot.handlers.labeling",  # /label queue session + q:… buttons (annotators)
    "bot.handlers.learning",  # /retrain, /models, /rollback (admins); learning jobs
    "bot.handlers.nontext",  # stickers, photos, voice in private chats
)
