"""The running product's shared state: settings, database, active model, services.

`await Runtime.open(settings)` migrates the database, loads the active model (registering one on
first start: the newest valid folder in MODEL_DIR, else a freshly built bootstrap model), starts
the `Predictor`, and builds the `SentimentService` and the `LearningService` (marking training
runs left `running` by a dead process as failed). `await runtime.close()` undoes it in reverse.
The Telegram app keeps it in `application.bot_data["runtime"]`; the console chat and CLI use it
directly. It holds factories only, never a session.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import texts
from bot.config import Settings
from bot.errors import OperatorError
from bot.learning.data import LearningOptions
from bot.learning.folders import folder_path
from bot.learning.registry import read_folder, register_folder
from bot.learning.service import LearningService
from bot.service import SentimentService
from classifier.artifacts import list_model_dirs, load_model, next_version_dir
from classifier.bootstrap import build_bootstrap_model
from classifier.device import resolve_device
from classifier.errors import ModelFolderError
from classifier.model import Classifier
from classifier.predictor import Predictor
from classifier.progress import EpochClock
from classifier.recipe import RunSettings
from storage import repositories as repo
from storage.db import create_engine, create_sessionmaker, upgrade_database
from storage.recorder import ScoredMessageRecorder

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    device: str
    predictor: Predictor
    recorder: ScoredMessageRecorder  # group commit for scored messages
    service: SentimentService
    learning: LearningService

    @classmethod
    async def open(
        cls, settings: Settings, *, learning_options: LearningOptions | None = None
    ) -> Runtime:
        """Migrate, load (or create) the active model, start the predictor, build the services.

        `learning_options`: how the learning loop trains (default: production's; tests pass a
        tiny corpus and few epochs).
        """
        await upgrade_database(settings.db_url, model_dir=settings.models_path)
        engine = create_engine(settings.db_url)
        try:
            sessionmaker = create_sessionmaker(engine)
            device = await asyncio.to_thread(resolve_device, settings.device)
            classifier, version = await _active_model(settings, sessionmaker, device)
            predictor = Predictor(
                classifier,
                version,
                max_batch=settings.predict_max_batch,
                max_wait_ms=settings.predict_max_wait_ms,
            )
            await predictor.start()
        except BaseException:
            await engine.dispose()
            raise
        log.info("model %s loaded on %s", version, device)
        recorder = ScoredMessageRecorder(sessionmaker, skip_opted_out=True)
        learning = LearningService.create(
            settings, sessionmaker, predictor, device=device, options=learning_options
        )
        # The export holds the resolved labels (weighed by each labeller's reliability).
        service = SentimentService(
            sessionmaker, predictor, recorder, examples=learning.resolved_examples
        )
        runtime = cls(
            settings, engine, sessionmaker, device, predictor, recorder, service, learning
        )
        try:
            if recovered := await runtime.learning.retrainer.recover():
                log.warning("marked %d interrupted training run(s) as failed", recovered)
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def close(self) -> None:
        """Stop the learning loop's worker, the predictor, the recorder (writing what it holds),
        then the database engine (each even if one fails)."""
        try:
            await self.learning.close()
        except Exception:
            log.exception("error while stopping the learning loop")
        try:
            await self.predictor.close()
        finally:
            try:
                await self.recorder.close()
            finally:
                await self.engine.dispose()


async def _active_model(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], device: str
) -> tuple[Classifier, str]:
    """Load the active version; on first start register one (newest valid folder or bootstrap)."""
    async with sessionmaker() as session:
        active = await repo.get_active_model_version(session)
    if active is not None:
        folder = folder_path(settings.models_path, active.folder)
        try:
            classifier = await asyncio.to_thread(load_model, folder, device)
        except ModelFolderError as exc:
            raise OperatorError(
                texts.ACTIVE_DOES_NOT_LOAD.format(version=active.version, error=exc)
            ) from None
        return classifier, active.version
    folder, classifier = await _first_model(settings, device)
    await _register_active(sessionmaker, settings.models_path, folder)
    return classifier, folder.name


async def _first_model(settings: Settings, device: str) -> tuple[Path, Classifier]:
    """The newest model folder in MODEL_DIR that loads; else build the bootstrap model."""
    model_dir = settings.models_path
    for folder in reversed(list_model_dirs(model_dir) if model_dir.exists() else []):
        try:
            return folder, await asyncio.to_thread(load_model, folder, device)
        except ModelFolderError as exc:
            log.warning("skipping model folder %s: %s", folder, exc)
    folder = next_version_dir(model_dir)
    log.warning(
        "no model in %s yet: building the bootstrap model into %s (takes a minute; "
        "`sentibot bootstrap` does the same ahead of time)",
        model_dir,
        folder,
    )
    clock = EpochClock()

    def log_epoch(epoch: int, epochs: int, f1: float) -> None:
        log.info(
            "bootstrap model: %s",
            texts.epoch_line(epoch, epochs, f1, *clock.tick(epoch, epochs, f1)),
        )

    try:
        run = RunSettings(device=device)
        folder = Path(
            await asyncio.to_thread(
                build_bootstrap_model,
                folder,
                run=run,
                backbone=settings.backbone,
                on_epoch=log_epoch,
            )
        )
    except Exception as exc:
        raise OperatorError(
            f"no usable model in MODEL_DIR ({model_dir}) and building the bootstrap model failed:"
            f" {exc}. Run `sentibot bootstrap` or `sentibot train` to create one."
        ) from exc
    return folder, await asyncio.to_thread(load_model, folder, device)


async def _register_active(
    sessionmaker: async_sessionmaker[AsyncSession], models_path: Path, folder: Path
) -> None:
    """Register the first model (or reuse its row: `sentibot train` registered it as a
    candidate) and make it active."""
    summary = await asyncio.to_thread(read_folder, folder)
    async with sessionmaker.begin() as session:
        await register_folder(session, models_path, folder, summary)
        await repo.activate_model_version(session, folder.name, reason=texts.FIRST_START_REASON)
    log.info("registered %s as the active model", folder.name)
