"""Start-up and shutdown: token checks, unreachable server, clean stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.app import serve
from bot.commands.run import check_token, run_command
from bot.errors import OperatorError
from tests.e2e.conftest import ALICE
from tests.e2e.fake_telegram import FakeTelegram, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD_FORMAT = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


@pytest.mark.parametrize("token", [None, "", "not-a-token", "123:short", "abc:" + "x" * 35])
def test_missing_or_malformed_token_is_one_clear_line(token):
    with pytest.raises(OperatorError) as info:
        check_token(token)
    message = str(info.value)
    assert "TELEGRAM_BOT_TOKEN" in message and "\n" not in message
    if token:
        assert token not in message  # never echo a secret


def test_run_command_refuses_without_token(make_settings):
    settings = make_settings(telegram_bot_token=None)
    with pytest.raises(OperatorError, match="TELEGRAM_BOT_TOKEN is not set"):
        run_command(argparse.Namespace(), settings)


def test_token_format_accepts_botfather_tokens():
    assert check_token(GOOD_FORMAT + " ") == GOOD_FORMAT


async def test_rejected_token_stops_with_clear_error(make_settings):
    settings = make_settings(telegram_bot_token=GOOD_FORMAT)  # the fake knows another token
    with pytest.raises(OperatorError, match="rejected"):
        await serve(settings)


async def test_unreachable_server_stops_with_clear_error(make_settings):
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        telegram_base_url=f"{url}/bot", telegram_base_file_url=f"{url}/file/bot"
    )
    with pytest.raises(OperatorError, match="TELEGRAM_BASE_URL"):
        await serve(settings)


async def test_stop_is_prompt_and_confirms_updates(start_bot):
    async with start_bot() as bot:
        assert bot.runtime.predictor.version == "v0001"
    # The last getUpdates confirmed everything and the runtime was closed.
    assert "runtime" not in bot.application.bot_data
    assert bot.fake.calls[-1][0] == "getUpdates"


async def test_token_never_reaches_the_logs(start_bot, caplog):
    caplog.set_level(logging.DEBUG)
    async with start_bot() as bot:
        await bot.say(ALICE, "hello")
    assert bot.fake.token not in caplog.text
    assert any("getUpdates" in r.getMessage() for r in caplog.records)  # URLs were logged


@pytest.mark.slow  # a fresh interpreter imports torch: seconds
async def test_sentibot_run_process_answers_and_stops_on_sigterm(make_settings, fake_telegram):
    settings = make_settings()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATA_DIR": str(settings.data_dir),
        "MODEL_DIR": str(settings.models_path),
        "DEVICE": "cpu",
        "TELEGRAM_BOT_TOKEN": fake_telegram.token,
        "TELEGRAM_BASE_URL": fake_telegram.base_url,
        "TELEGRAM_BASE_FILE_URL": fake_telegram.base_file_url,
        "LOG_LEVEL": "DEBUG",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=settings.data_dir.parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await fake_telegram.wait_for(lambda: fake_telegram.get_updates_calls > 0, timeout=120)
        fake_telegram.user_says(FakeTelegram.private_chat(ALICE), ALICE, "I love this!")
        reply = await fake_telegram.next_from_bot(ALICE["id"], timeout=30)
        assert "·" in reply.text and len(reply.buttons) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert fake_telegram.token not in stderr.decode()
