"""Sentibot's composition root: settings, service layer, Telegram handlers, jobs and CLI."""
