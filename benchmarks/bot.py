"""End-to-end bot throughput through the fake Bot API server, against a trivial echo bot.

Both bots run as their own process (`python benchmarks/bot.py --serve bot|echo`), talk to the same
fake Telegram server (tests/e2e/fake_telegram.py) in this process, and get the same load: 500
messages queued at once over 20 private chats (after a 20-message warm-up). Throughput = messages
until the 500th reply / seconds. The sentibot process scores each message with the embedding
model, stores message + prediction in SQLite and replies with label, confidence and buttons; the
echo bot only replies. Both use the same update processor (concurrent across chats, ordered within
one) and neither uses the rate limiter (it would cap both at Telegram's 30 messages/s).

    python benchmarks/bot.py [--messages 500] [--chats 20] [--rounds 3] [--model DIR]

Targets: throughput ratio sentibot / echo >= 0.8; sentibot's peak RSS <= 600 MB.
Texts come from ../shared/data/tweeteval_sentiment/validation.csv; without --model, a model is
trained on ../shared/data/semeval2017_4a/train.csv (2 epochs) first. Skips when the data is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO_ROOT, cpu_note, data_file, peak_rss_mib, ratio  # noqa: E402

TOKEN = "123456789:BENCH-fake-token-abcdefghijklmnop"


# --- the bot processes ------------------------------------------------------------------------
def serve_child(kind: str) -> None:
    """Run sentibot (`serve`, as `sentibot run` does) or the echo bot until SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        if kind == "bot":
            from bot.app import serve
            from bot.config import get_settings

            await serve(get_settings(), stop=stop, rate_limit=False)
        else:
            await serve_echo(stop)

    asyncio.run(main())
    print(json.dumps({"peak_rss_mib": vm_hwm_mib()}), flush=True)


def vm_hwm_mib() -> float:
    """This process's peak RSS since exec (ru_maxrss would include the parent's pre-exec peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


async def serve_echo(stop: asyncio.Event) -> None:
    """The peer: PTB with the same base URL, HTTP pool and update processor; echoes the text."""
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    from bot.updates import CONNECTION_POOL_SIZE, POOL_TIMEOUT_S, PerChatUpdateProcessor

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(update.effective_message.text[:100])

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(os.environ["TELEGRAM_BASE_URL"])
        .base_file_url(os.environ["TELEGRAM_BASE_FILE_URL"])
        .concurrent_updates(PerChatUpdateProcessor())
        .connection_pool_size(CONNECTION_POOL_SIZE)  # the same HTTP client settings as sentibot
        .pool_timeout(POOL_TIMEOUT_S)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    async with application:
        await application.updater.start_polling()
        await application.start()
        await stop.wait()
        await application.updater.stop()
        await application.stop()


# --- the harness ------------------------------------------------------------------------------
def read_texts(limit: int) -> list[str]:
    path = data_file("tweeteval_sentiment", "validation.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    return (texts * (limit // len(texts) + 1))[:limit]


def train_model(model_dir: Path) -> Path:
    from classifier.artifacts import save_model
    from classifier.data import read_labelled_csv
    from classifier.recipe import TrainRecipe
    from classifier.training import train

    texts, labels = read_labelled_csv(data_file("semeval2017_4a", "train.csv"))
    started = time.perf_counter()
    result = train(texts, labels, ["negative", "neutral", "positive"], TrainRecipe(epochs=2))
    print(f"trained the benchmark model in {time.perf_counter() - started:.1f}s")
    return save_model(result.classifier, model_dir / "v0001", result.card("train"))


async def drive(kind: str, env: dict[str, str], texts: list[str], args, round_: int) -> dict:
    """Start one bot process, warm it up, time one batch, stop it; return the figures."""
    from tests.e2e.fake_telegram import FakeTelegram

    # New chats each round: the fake restarts message ids, and the same (chat, id) is an edit.
    users = [FakeTelegram.user(10_000 * (round_ + 1) + i, f"User{i}") for i in range(args.chats)]
    async with FakeTelegram(TOKEN) as fake:
        child_env = {
            **env,
            "TELEGRAM_BASE_URL": fake.base_url,
            "TELEGRAM_BASE_FILE_URL": fake.base_file_url,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            kind,
            env=child_env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
        )
        try:
            await fake.wait_for(lambda: fake.get_updates_calls > 0, timeout=300)

            async def batch(items: list[str]) -> float:
                expected = len(fake.sent) + len(items)
                started = time.perf_counter()
                for i, text in enumerate(items):
                    user = users[i % len(users)]
                    fake.user_says(FakeTelegram.private_chat(user), user, text)
                await fake.wait_for(lambda: len(fake.sent) >= expected, timeout=600)
                return time.perf_counter() - started

            await batch(texts[: args.chats])  # warm-up: first forward pass, first statements
            cpu_before = process_cpu_seconds(proc.pid)
            seconds = await batch(texts[: args.messages])
            cpu_ms = (process_cpu_seconds(proc.pid) - cpu_before) * 1000 / args.messages
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    peak = json.loads(lines[-1])["peak_rss_mib"] if lines else float("nan")
    return {"rate": args.messages / seconds, "peak_rss_mib": peak, "cpu_ms": cpu_ms}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to tell CPU from waiting."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, help="model folder (default: train one)")
    parser.add_argument("--serve", choices=["bot", "echo"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve)
        return 0

    texts = read_texts(args.messages)
    with tempfile.TemporaryDirectory(prefix="sentibot-bench-bot-") as tmp:
        data_dir = Path(tmp) / "data"
        model_dir = data_dir / "models"
        if args.model:
            model_dir.mkdir(parents=True)
            os.symlink(args.model.resolve(), model_dir / "v0001")
        else:
            train_model(model_dir)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "DATA_DIR": str(data_dir),
            "MODEL_DIR": str(model_dir),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "DEVICE": os.environ.get("DEVICE", "cpu"),
            "LOG_LEVEL": "WARNING",
        }
        print(cpu_note())
        runs: dict[str, list[dict]] = {"echo": [], "bot": []}
        for round_ in range(args.rounds):  # alternate, so both see the same background load
            for kind in ("echo", "bot"):
                runs[kind].append(asyncio.run(drive(kind, env, texts, args, round_)))
                run = runs[kind][-1]
                print(
                    f"round {round_ + 1} {kind:>4}: {run['rate']:.0f} msg/s, "
                    f"{run['cpu_ms']:.2f} ms CPU per message in the bot process"
                )
        with sqlite3.connect(data_dir / "sentibot.db") as db:
            stored = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    expected = (args.chats + args.messages) * args.rounds
    bot, echo = (
        {
            "median": statistics.median(r["rate"] for r in runs[kind]),
            "best": max(r["rate"] for r in runs[kind]),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[kind]),
        }
        for kind in ("bot", "echo")
    )
    print(f"stored messages: {stored} (expected {expected})")
    # Other processes share these cores; as with timeit, the best round is the least disturbed.
    print(
        f"throughput: sentibot median {bot['median']:.0f} / best {bot['best']:.0f} msg/s, "
        f"echo median {echo['median']:.0f} / best {echo['best']:.0f} msg/s"
    )
    print(
        f"throughput ratio sentibot/echo: best {ratio(bot['best'], echo['best'])}, "
        f"median {ratio(bot['median'], echo['median'])} (target >= 0.8)"
    )
    print(
        f"peak RSS: sentibot {bot['peak_rss_mib']:.0f} MiB (target <= 600 MB), "
        f"echo {echo['peak_rss_mib']:.0f} MiB"
    )
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
