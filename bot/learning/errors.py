"""The requests the learning loop refuses; each message (from `bot.texts`) is meant for the person
who asked, in plain text."""

from __future__ import annotations

from bot import texts


class LearningError(Exception):
    """A request the learning loop refuses; the message is meant for the person who asked."""


class TrainingInProgressError(LearningError):
    def __init__(self, message: str = texts.IN_PROGRESS) -> None:
        super().__init__(message)


class RollbackError(LearningError):
    """A rollback that was refused (unknown version, folder that does not load or score…)."""


class RegistryError(LearningError):
    """A model registry request that was refused (unknown version, the active one deleted…)."""


class RejectedVersionError(RollbackError):
    """The target is a version the promotion gate rejected (`activate --force` overrides)."""
