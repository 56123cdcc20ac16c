"""`sentibot chat` (plain text in a terminal) and `sentibot up`."""

from __future__ import annotations

# --- `sentibot chat` (plain text in a terminal) and `sentibot up` --------------------------------
CONSOLE_HELP = """Type a message to score it. Commands:
  /label <{labels}>   label your last message
  /mood [24h|7d]      the mood of everything typed here
  /status             model, metrics and counts
  /help               this text
  /quit               leave (Ctrl-D works too)"""
CONSOLE_WELCOME = "sentibot {version}: type a message, /help, or /quit."
CONSOLE_UNKNOWN = "Unknown command {command}. /help lists the commands."
CONSOLE_LABEL_USAGE = "Usage: /label <{labels}>"
CONSOLE_NOTHING_TO_LABEL = "Nothing to label yet: type a message first."
CONSOLE_LABELLED = "✓ you said: {label}"
UP_WITHOUT_TOKEN = "TELEGRAM_BOT_TOKEN is not set: starting the console chat instead."
CONSOLE_NOW_SERVING = "(now answering with {version}: it was activated elsewhere)"
