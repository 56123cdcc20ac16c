"""Classifier errors with messages meant for people (the CLI prints them as one line)."""


class ClassifierError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class DataError(ClassifierError):
    """Bad training / evaluation input: missing file, missing column, unknown label, blank text…"""

    exit_code = 2


class ModelFolderError(ClassifierError):
    """A model folder that is missing, truncated or does not match its config (names the file)."""

    exit_code = 1
