"""Telegram handlers, one module per feature; each exposes `register(application, settings)`."""

HANDLER_MODULES: tuple[str, ...] = ()
