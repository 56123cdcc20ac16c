"""Errors the CLI turns into one clear line (no traceback).

`UsageError` is something the person typing the command can fix (exit code 2); `OperatorError` is a
bad path or an unreachable service (exit code 1); `SettingError` a bad setting, named with its
fix (exit code 2).
"""


class CliError(Exception):
    exit_code = 1


class UsageError(CliError):
    exit_code = 2


class OperatorError(CliError):
    exit_code = 1


class SettingError(OperatorError):
    """A bad setting (environment or `.env`): the message names it and says what to set."""

    exit_code = 2
