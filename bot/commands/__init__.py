"""Subcommands of the `sentibot` CLI, one module per area (`bot.cli` imports and registers each)."""
