"""Errors the CLI turns into one clear line (no traceback).

`UsageError` is something the person typing the command can fix (exit code 2); `OperatorError` is a
bad setting, path or unreachable service (exit code 1).
"""


class CliError(Exception):
    exit_code = 1


class UsageError(CliError):
    exit_code = 2


class OperatorError(CliError):
    exit_code = 1
