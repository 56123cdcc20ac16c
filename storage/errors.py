"""Storage errors with messages meant for people (the CLI prints them as one line)."""


class StorageError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class DatabaseUnreachableError(StorageError):
    """The DATABASE_URL cannot be opened."""


class DatabaseTooNewError(StorageError):
    """The database was migrated by a newer sentibot than this one."""


class ImportFileError(StorageError):
    """A CSV to import is missing or has bad rows (names the line numbers); nothing was imported."""

    exit_code = 2


class NotFoundError(StorageError):
    """A message, model version or training run that the caller named does not exist."""


class TrainingAlreadyRunningError(StorageError):
    """`start_training_run` found another run still marked `running`."""
