"""A real retrain's checks on the labels: the learning curve (report, card, /status, chart) and
the suspicious labels it hands to /review (down-weighted until reviewed)."""

from __future__ import annotations

import random

from bot import charts, texts
from classifier.card import read_card
from storage import repositories as repo
from tests.learning.conftest import chat_texts, open_env


async def test_retrain_draws_the_learning_curve_and_finds_flipped_labels(
    tmp_path, tiny_model_dir, tiny_training_data
):
    env = await open_env(tmp_path, tiny_model_dir, tiny_training_data)
    try:
        items = chat_texts(150)
        ids = await env.add_messages(items)
        rng = random.Random(0)
        flipped = set()
        async with env.sessionmaker.begin() as session:
            for mid, (_, label) in zip(ids, items, strict=True):
                if rng.random() < 0.1:
                    flipped.add(mid)
                    label = {"positive": "negative", "negative": "positive"}.get(label, "positive")
                await repo.set_label(session, mid, 2, label, source="queue")
        outcome = await env.learning.retrainer.retrain("admin", 1, force=True)
        assert outcome.status in ("promoted", "rejected"), outcome.message
        curve = outcome.learning_curve
        assert [p["fraction"] for p in curve["points"]] == [0.25, 0.5, 0.75, 1.0]
        assert curve["points"][-1]["labels"] == outcome.user_rows >= 100
        assert curve["verdict"] in ("rising", "flattening")
        summary = "\n".join(texts.retrain_summary(outcome))
        assert f"Would more labels help? {curve['verdict']}" in summary
        card = read_card(env.settings.models_path / outcome.candidate_version)
        assert card.learning_curve == curve
        assert charts.learning_curve_png(curve, "t").startswith(b"\x89PNG")
        status = await env.learning.status()
        assert status.learning_curve == curve
        assert "would more labels help?" in "\n".join(texts.learning_lines(status))

        # Suspects: in /review, most suspicious first, mostly the flipped ones, down-weighted.
        assert outcome.suspects > 0 and status.pending_reviews == outcome.suspects
        view = await env.learning.reviews.next()
        assert view.item is not None and view.left == outcome.suspects
        async with env.sessionmaker() as session:
            _, pending = await repo.review_states(session)
        assert len(pending & flipped) >= len(pending) / 2
        examples = {e.message_id: e for e in await env.learning.resolved_examples()}
        some = next(iter(pending))
        assert examples[some].weight < examples[some].confidence
        assert await env.learning.reviews.decide(1, some, None)  # Keep
        examples = {e.message_id: e for e in await env.learning.resolved_examples()}
        assert examples[some].weight == examples[some].confidence == 1.0
        assert not await env.learning.reviews.decide(1, some, None)  # settled already
    finally:
        await env.learning.close()
        await env.predictor.close()
        await env.engine.dispose()
