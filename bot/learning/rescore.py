"""Re-scoring the /label queue after a model change (promotion, rollback, sync).

The queue's uncertainty order comes from the active model's predictions; after a swap,
unlabelled messages are scored by the new model (newest first, up to `RESCORE_LIMIT`) so the
order follows the model that is serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from classifier.predictor import Predictor

RESCORE_LIMIT = 5000
RESCORE_CHUNK = 200


async def unscored_messages(session: AsyncSession, version: str, limit: int) -> list[Any]:
    """(id, text) of unlabelled messages without a prediction by `version`, newest first."""
    from sqlalchemy import exists, select

    from storage.models import Label, Message, Prediction

    result = await session.execute(
        select(Message.id, Message.text)
        .where(~exists().where(Label.message_id == Message.id))
        .where(
            ~exists().where(
                Prediction.message_id == Message.id, Prediction.model_version == version
            )
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return list(result.all())


async def rescore_unlabelled(
    sessionmaker: async_sessionmaker[AsyncSession],
    predictor: Predictor,
    version: str,
    limit: int = RESCORE_LIMIT,
) -> int:
    """Score unlabelled messages that `version` has not scored yet; returns how many."""
    from storage import repositories as repo

    async with sessionmaker() as session:
        rows = await unscored_messages(session, version, limit)
    if not rows:
        return 0
    # Chunk by chunk: the predictor runs one request as one batch, so scoring all rows at once
    # would hold every chat's reply behind it (tens of seconds with BERT); small units of work
    # likewise let the bot's own writes take the database lock in between.
    for start in range(0, len(rows), RESCORE_CHUNK):
        chunk = rows[start : start + RESCORE_CHUNK]
        predictions = await predictor.predict([text for _, text in chunk])
        async with sessionmaker.begin() as session:
            for (message_id, _), pred in zip(chunk, predictions, strict=True):
                await repo.add_prediction(
                    session,
                    message_id,
                    model_version=pred.model_version,
                    label=pred.label,
                    confidence=pred.confidence,
                    probs=pred.probs,
                )
    return len(rows)
