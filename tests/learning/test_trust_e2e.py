"""Labels you can trust, end to end: the real bot against the fake Bot API server (tiny model,
real training workers). Two annotators with one always wrong (export, flag, /status, the
annotator list, /annotator exclude|include, the learning-curve section of the report), the
queue never handing an item to two people at once, /review, and a burst of copies."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from storage import repositories as repo
from storage.models import Message
from tests.e2e.conftest import ADMIN, ALICE, ANNOTATOR, GROUP
from tests.e2e.fake_telegram import FakeTelegram
from tests.learning.conftest import chat_texts
from tests.learning.test_e2e import LENIENT, chat_history, press_and_wait, truth_of

NORA = FakeTelegram.user(9003, "Nora")  # an annotator without a username: groups see no id
WRONG = {"negative": "positive", "neutral": "negative", "positive": "neutral"}


async def label_everything(bot, person: dict, truth: dict[str, str], *, liar: bool) -> int:
    """`person` labels every queue item through the buttons (the liar always wrongly)."""
    session_msg = await bot.say(person, "/label")
    n = 0
    while session_msg.buttons:
        text = session_msg.text
        if not any(t in text for t in truth):  # the hellos: not part of this test
            await press_and_wait(bot, session_msg, "Skip", person)
            continue
        label = truth_of(text, truth)
        await press_and_wait(bot, session_msg, WRONG[label] if liar else label, person)
        n += 1
    return n


async def export_rows(bot) -> list[dict]:
    bot.fake.user_says(bot.private(ADMIN), ADMIN, "/export")
    document = await bot.fake.next_from_bot(ADMIN["id"])
    assert document.method == "sendDocument"
    return list(csv.DictReader(io.StringIO(document.file_bytes.decode("utf-8-sig"))))


def honest_share(rows: list[dict], truth: dict[str, str]) -> float:
    shared = [r for r in rows if r["text"] in truth]
    return sum(r["label"] == truth[r["text"]] for r in shared) / len(truth)


@pytest.mark.slow
async def test_two_annotators_one_always_wrong(start_bot):
    items = chat_texts(24)
    truth = dict(items)
    two = {"labels_per_item": 2, "annotator_ids": [ANNOTATOR["id"], NORA["id"]], **LENIENT}
    async with start_bot(**two) as bot:
        for person in (ANNOTATOR, NORA):  # so the bot knows their names
            await bot.say(person, f"hello from {person['first_name']}")
        await chat_history(bot, items)
        assert await label_everything(bot, ANNOTATOR, truth, liar=False) == 24
        assert await label_everything(bot, NORA, truth, liar=True) == 24

        # Every item is a 1-1 tie: the honest annotator's label wins (the model breaks it).
        assert honest_share(await export_rows(bot), truth) >= 0.9

        progress = await bot.say(ADMIN, "/retrain")
        flag = await bot.fake.wait_for(
            lambda: next(
                (m for m in bot.fake.messages(ADMIN["id"]) if "look unreliable" in (m.text or "")),
                None,
            ),
            timeout=180,
        )
        assert "Nora (9003)" in flag.text and "/annotator exclude 9003" in flag.text
        while (await bot.fake.next_from_bot(ADMIN["id"])).message_id != flag.message_id:
            pass  # the report's charts came first
        report = progress.text
        assert "Retraining: promoted" in report or "Retraining: rejected" in report
        assert "Would more labels help? too few labels to tell" in report

        status = await bot.say(ADMIN, "/status")
        assert "label sources" in status.text and "Krippendorff's α" in status.text
        nina = next(line for line in status.text.splitlines() if "@nina_labels:" in line)
        nora = next(line for line in status.text.splitlines() if "Nora (9003):" in line)
        assert "24 labels" in nora and "flagged" in nora and "agrees with others on 0%" in nora
        assert (
            float(nina.split("reliability ")[1][:4])
            > 0.9
            > 0.1
            > float(nora.split("reliability ")[1][:4])
        )
        in_group = await bot.say(ADMIN, "/annotator", chat=GROUP)
        assert "Nora:" in in_group.text and "9003" not in in_group.text
        assert str(ANNOTATOR["id"]) not in in_group.text

        done = await bot.say(ADMIN, "/annotator exclude 9003")
        assert "Excluded Nora (9003)" in done.text
        assert "already" in (await bot.say(ADMIN, "/annotator exclude 9003")).text
        assert "paused" in (await bot.say(NORA, "/label")).text
        assert honest_share(await export_rows(bot), truth) == 1.0
        listing = await bot.say(ADMIN, "/annotator")
        assert "EXCLUDED" in next(line for line in listing.text.splitlines() if "Nora" in line)
        assert "Included" in (await bot.say(ADMIN, "/annotator include 9003")).text
        assert (await bot.say(ADMIN, "/annotator exclude nobody")).text.startswith("I don't know")
        async with bot.runtime.sessionmaker() as session:
            actions = [a.action for a in await repo.list_audit(session)]
        assert actions[:2] == ["annotator_include", "annotator_exclude"]

        # Told once: a second run does not flag Nora again.
        before = len([m for m in bot.fake.messages(ADMIN["id"]) if "unreliable" in (m.text or "")])
        outcome = await bot.runtime.learning.retrainer.retrain("admin", ADMIN["id"], force=True)
        assert outcome.flagged == []
        assert before == 1


async def test_an_item_is_never_handed_to_two_annotators_at_once(start_bot):
    items = chat_texts(6)
    truth = dict(items)
    async with start_bot(annotator_ids=[ANNOTATOR["id"], NORA["id"]]) as bot:
        await chat_history(bot, items)
        first = await bot.say(ANNOTATOR, "/label")
        second = await bot.say(NORA, "/label")
        assert truth_of(first.text, truth) and truth_of(second.text, truth)
        mine = first.buttons[0]["callback_data"].split(":")[2]
        theirs = second.buttons[0]["callback_data"].split(":")[2]
        assert mine != theirs
        # Nora forges a label for Ann's item: the queue never offered it to her.
        query = bot.fake.callback(second, f"q:l:{mine}:positive", NORA)
        assert "did not offer" in (await bot.fake.answer_for(query))["text"]
        async with bot.runtime.sessionmaker() as session:
            assert await repo.get_label(session, int(mine), NORA["id"]) is None
        # Once Ann stops, her item is free again, for Nora too.
        await press_and_wait(bot, first, "Stop", ANNOTATOR)
        offered = set()
        while second.buttons:
            offered.add(second.buttons[0]["callback_data"].split(":")[2])
            await press_and_wait(bot, second, truth_of(second.text, truth), NORA)
        assert mine in offered and len(offered) == 6


async def test_review_keep_change_skip(start_bot):
    items = chat_texts(3)
    async with start_bot() as bot:
        await chat_history(bot, items)
        async with bot.runtime.sessionmaker.begin() as session:
            ids = []
            for text, label in items:
                message = await session.scalar(select(Message).where(Message.text == text))
                await repo.set_label(session, message.id, ALICE["id"], label, source="inline")
                ids.append(message.id)
            suspects = [
                repo.Suspect(ids[0], items[0][1], "neutral", 0.05),
                repo.Suspect(ids[1], items[1][1], "neutral", 0.10),
                repo.Suspect(ids[2], items[2][1], "neutral", 0.20),
            ]
            assert await repo.replace_pending_reviews(session, suspects, None) == 3
        assert "private chat" in (await bot.say(ANNOTATOR, "/review", chat=GROUP)).text
        review = await bot.say(ANNOTATOR, "/review")
        assert items[0][0] in review.text and "Waiting for review: 3" in review.text
        await press_and_wait(bot, review, "Keep", ANNOTATOR)  # most suspicious first
        assert items[1][0] in review.text
        await press_and_wait(bot, review, "Skip", ANNOTATOR)
        assert items[2][0] in review.text
        changed = "negative" if items[2][1] != "negative" else "positive"
        await press_and_wait(bot, review, changed, ANNOTATOR)
        assert "No labels waiting" in review.text
        again = await bot.say(ANNOTATOR, "/review")  # a new session: the skipped one is back
        assert items[1][0] in again.text and "Waiting for review: 1" in again.text
        rows = {r["text"]: r["label"] for r in await export_rows(bot)}
        assert rows[items[0][0]] == items[0][1] and rows[items[2][0]] == changed
        async with bot.runtime.sessionmaker() as session:
            actions = [a.action for a in await repo.list_audit(session)]
        assert actions[:3] == ["review_changed", "review_skip", "review_kept"]
        status = await bot.say(ADMIN, "/status")
        assert "labels waiting for /review: 1" in status.text


async def test_a_burst_of_near_identical_messages_adds_a_handful(start_bot):
    async with start_bot(queue_max_per_author_hour=10, queue_similarity=0.7) as bot:
        for i in range(150):
            bot.fake.user_says(bot.private(ALICE), ALICE, f"BUY NOW!!! only {i}$ http://x.io/{i}")
        await bot.fake.wait_for(lambda: len(bot.fake.messages(ALICE["id"])) >= 150, timeout=60)
        for text in ("the bus is late again", "what a lovely morning"):
            await bot.say(ANNOTATOR, text)
        session_msg = await bot.say(ANNOTATOR, "/label")
        left = int(session_msg.text.rsplit("left in the queue: ", 1)[1].split()[0])
        assert left <= 5
        async with bot.runtime.sessionmaker() as session:
            assert (await repo.held_counts(session)).get("duplicate", 0) >= 145
