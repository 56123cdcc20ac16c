"""Subcommands of the `sentibot` CLI, one module per area (see `bot.cli.COMMAND_MODULES`)."""
