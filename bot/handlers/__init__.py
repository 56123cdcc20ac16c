"""Telegram handlers, one module per feature; each exposes `register(application, settings)`.

`bot.app` imports the modules by name and calls `register` in a fixed order; within PTB's handler
group 0 the first matching handler wins, so modules with commands come before catch-alls, and
`bot.app` adds the "admins only" / unknown-command fallbacks after all of them.
"""
