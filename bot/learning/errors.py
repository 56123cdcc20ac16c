"""The requests the learning loop refuses; each message is meant for the person who asked."""

from __future__ import annotations

IN_PROGRESS = "a training run is already in progress"


class LearningError(Exception):
    """A request the learning loop refuses; the message is meant for the person who asked."""


class TrainingInProgressError(LearningError):
    def __init__(self, message: str = IN_PROGRESS) -> None:
        super().__init__(message)


class RollbackError(LearningError):
    """A rollback that was refused (unknown version, folder that does not load or score…)."""
