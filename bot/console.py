"""`sentibot chat`: the sentiment service in a terminal, offline, without a token.

Each line is scored, stored as chat `console` (chat id 0, user id 0) and answered with the label
and confidence. `/label <word>` labels the last message, `/mood [24h|7d]`, `/status`, `/help` and
`/quit` work too. It reads a pipe as well as a terminal (prompts only on a terminal), so it can be
scripted: `printf 'I love it\n/label positive\n' | sentibot chat`; bytes that are not UTF-8 are
read as U+FFFD (`sentibot chat` reconfigures stdin). A version activated elsewhere (`sentibot
models activate`, a rollback) is swapped in before the next line is scored.
"""

from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from typing import TYPE_CHECKING, TextIO

from bot import texts
from bot.config import Settings
from bot.runtime import Runtime
from bot.service import Author, ChatRef, ScoreResult, SentimentService

if TYPE_CHECKING:
    from bot.learning.versions import ModelVersions

CONSOLE_CHAT = ChatRef(0, "console", "console")
CONSOLE_USER = Author(0, "console", "console")


def plain(text: str) -> str:
    """The HTML messages of `bot.texts` as terminal text."""
    return html.unescape(re.sub(r"</?[a-zA-Z][^<>]*>", "", text))


# How often the console checks the database's active version (`sentibot models activate` or a
# rollback elsewhere): at most once a second, before the line it answers.
SYNC_EVERY_S = 1.0


class ConsoleChat:
    """One console session: remembers the last scored message for /label, and follows the
    database's active version (`versions`: the learning loop's `ModelVersions`)."""

    def __init__(
        self, service: SentimentService, out: TextIO, versions: ModelVersions | None = None
    ) -> None:
        self.service = service
        self.out = out
        self.versions = versions
        self.last: ScoreResult | None = None
        self._synced = time.monotonic()

    async def follow_active(self) -> None:
        """Swap in a version activated elsewhere, and say so."""
        if self.versions is None or time.monotonic() - self._synced < SYNC_EVERY_S:
            return
        self._synced = time.monotonic()
        version = await self.versions.sync_active_model()
        if version is not None:
            self.say(texts.CONSOLE_NOW_SERVING.format(version=version), html_text=False)

    def say(self, text: str, *, html_text: bool = True) -> None:
        """Print a line; `html_text`: it comes from `bot.texts` (HTML) and is converted."""
        print(plain(text) if html_text else text, file=self.out, flush=True)

    async def handle(self, line: str) -> bool:
        """Answer one line; False when the session should end."""
        line = line.strip()
        if not line:
            return True
        command, _, arg = line.partition(" ")
        command = command.lower()
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self.say(
                texts.CONSOLE_HELP.format(labels="|".join(self.service.labels)), html_text=False
            )
        elif command == "/label":
            await self.label(arg.strip().lower())
        elif command == "/mood":
            await self.mood(arg.strip().lower() or "all")
        elif command == "/status":
            self.say(texts.status_text(await self.service.status()))
        elif command.startswith("/") and " " not in command and len(command) > 1:
            self.say(texts.CONSOLE_UNKNOWN.format(command=command), html_text=False)
        else:
            await self.follow_active()
            self.last = await self.service.score_message(CONSOLE_CHAT, CONSOLE_USER, line)
            self.say(texts.score_line(self.last.label, self.last.confidence))
        return True

    async def label(self, word: str) -> None:
        labels = self.service.labels
        if word not in labels:
            self.say(texts.CONSOLE_LABEL_USAGE.format(labels="|".join(labels)), html_text=False)
        elif self.last is None or self.last.message_id is None:
            self.say(texts.CONSOLE_NOTHING_TO_LABEL)
        else:
            result = await self.service.record_label(self.last.message_id, CONSOLE_USER, word)
            ok = texts.CONSOLE_LABELLED.format(label=word)
            self.say(ok if result.ok else texts.feedback_answer(result.outcome, word))

    async def mood(self, window: str) -> None:
        if window not in ("all", "24h", "7d"):
            self.say(texts.MOOD_USAGE)
            return
        self.say(texts.mood_text(await self.service.mood(CONSOLE_CHAT.id, window)))


async def read_line(stdin: TextIO) -> str:
    """`stdin.readline()` off the event loop, in a daemon thread: asyncio.to_thread's worker
    threads are joined at shutdown, so Ctrl-C at the prompt would wait for Enter."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not future.done():  # cancelled by Ctrl-C meanwhile
            future.set_result(line)

    def read() -> None:
        line = stdin.readline()
        try:
            loop.call_soon_threadsafe(deliver, line)
        except RuntimeError:  # the loop closed while we waited for input
            pass

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    return await future


async def run_console(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """Read lines until EOF or /quit; returns the exit code."""
    runtime = await Runtime.open(settings)
    try:
        chat = ConsoleChat(runtime.service, stdout, runtime.learning.versions)
        interactive = stdin.isatty()
        if interactive:
            chat.say(texts.CONSOLE_WELCOME.format(version=runtime.predictor.version))
        while True:
            if interactive:
                print("> ", end="", file=stdout, flush=True)
            line = await read_line(stdin)
            if not line or not await chat.handle(line):
                break
    finally:
        await runtime.close()
    return 0
