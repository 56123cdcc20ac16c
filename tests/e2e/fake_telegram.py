"""A small fake Telegram Bot API server for end-to-end tests (aiohttp, 127.0.0.1, a free port).

It implements what sentibot (python-telegram-bot 22) calls, with the real API's response shapes
(`{"ok": true, "result": ...}`, dates in seconds, `is_bot` on users, `chat_instance` on callback
queries), real long polling with offsets, and the validations that catch real bugs: messages over
4,096 characters, malformed HTML, "message is not modified" edits, over-long callback answers.

Tests play the users: `user_says()`, `send_sticker()`, `edit()`, `press()` queue updates;
`next_from_bot(chat)` / `wait_for(predicate)` read what the bot sent (`BotMessage` objects).
(Their `timeout` parameters are deliberate: tests read better with a per-call limit.)

Unknown methods get Telegram's own answer for them (404 "Not Found") and are recorded in
`unknown_calls`, so a test sees at once when the bot starts calling something the fake lacks,
instead of the fake silently pretending it worked.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class ApiError(Exception):
    """An error the fake answers with `{"ok": false, ...}`, as the real Bot API does."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """Validate Telegram-style HTML and return the plain text (raises ApiError like Telegram)."""
    plain, pos, stack = [], 0, []
    for match in _TAG.finditer(text):
        plain.append(text[pos : match.start()])
        closing, tag = match.group(1), match.group(2).lower()
        if tag not in ALLOWED_TAGS:
            raise ApiError(f"Bad Request: can't parse entities: unsupported start tag {tag!r}")
        if closing:
            if not stack or stack.pop() != tag:
                raise ApiError(f"Bad Request: can't parse entities: unexpected end tag {tag!r}")
        else:
            stack.append(tag)
        pos = match.end()
    plain.append(text[pos:])
    if stack:
        raise ApiError(f"Bad Request: can't parse entities: unclosed tag {stack[-1]!r}")
    joined = "".join(plain)
    if "<" in joined or ">" in joined:
        raise ApiError("Bad Request: can't parse entities: unescaped '<' or '>'")
    for amp in re.finditer("&", joined):
        if not _ENTITY.match(joined, amp.start()):
            raise ApiError("Bad Request: can't parse entities: unescaped '&'")
    return html.unescape(joined)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BotMessage:
    """Something the bot sent: a text message, a photo or a document (kept up to date on edits)."""

    message_id: int
    chat_id: int
    method: str
    text: str | None = None  # plain text (HTML parsed), or the caption for photos / documents
    raw_text: str | None = None  # as sent, with markup
    reply_markup: dict | None = None
    reply_to: int | None = None
    file_bytes: bytes | None = None
    file_name: str | None = None
    edits: list[str] = field(default_factory=list)  # previous texts, oldest first

    @property
    def buttons(self) -> list[dict]:
        """Inline keyboard buttons, row by row flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def button(self, text_contains: str) -> dict:
        """The one button whose text contains `text_contains` (case-insensitive)."""
        found = [b for b in self.buttons if text_contains.lower() in b["text"].lower()]
        if len(found) != 1:
            raise AssertionError(f"expected one button with {text_contains!r}, got {self.buttons}")
        return found[0]


class FakeTelegram:
    """The fake server plus the test-side API for playing users."""

    def __init__(self, token: str = "123456789:TEST-fake-token-abcdefghijklmnop") -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Sentibot",
            "username": "sentibot_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }
        self.port = free_port()
        self.sent: list[BotMessage] = []
        self.callback_answers: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.unknown_calls: list[str] = []
        self.commands: dict[str, list[dict]] = {}
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = {}
        self._by_key: dict[tuple[int, int], BotMessage] = {}
        self._cursor: dict[int, int] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.get_updates_calls = 0
        self._closing = False
        self._failures: dict[str, list[ApiError]] = {}

    # ---------------------------------------------------------------- server lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        # Release long polls still held for a client that has gone away, so cleanup is quick.
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- users' side
    @staticmethod
    def user(user_id: int, first_name: str = "Ann", username: str | None = None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        return user

    @staticmethod
    def private_chat(user: dict) -> dict:
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}

    @staticmethod
    def group_chat(chat_id: int, title: str = "Test group") -> dict:
        assert chat_id < 0, "group chat ids are negative"
        return {"id": chat_id, "type": "supergroup", "title": title}

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _message(self, chat: dict, user: dict, **content: Any) -> dict:
        return {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            **content,
        }

    def _push(self, update: dict) -> dict:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._notify()
        return update

    def user_says(self, chat: dict, user: dict, text: str) -> dict:
        """Queue a text message (commands get their `bot_command` entity); returns the message."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        message = self._message(chat, user, **content)
        self._push({"message": message})
        return message

    def send_sticker(self, chat: dict, user: dict) -> dict:
        sticker = {
            "file_id": "CAACAgIAAxkBAAI",
            "file_unique_id": "AgADsticker",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "😀",
        }
        message = self._message(chat, user, sticker=sticker)
        self._push({"message": message})
        return message

    def edit(self, message: dict, new_text: str) -> dict:
        """Queue an `edited_message` update for a message a user sent earlier."""
        edited = {**message, "text": new_text, "edit_date": int(time.time())}
        self._push({"edited_message": edited})
        return edited

    def press(self, bot_message: BotMessage, button: dict | str, user: dict) -> dict:
        """Queue a callback query: `user` presses `button` (or the one whose text contains it)."""
        if isinstance(button, str):
            button = bot_message.button(button)
        return self.callback(bot_message, button["callback_data"], user)

    def callback(self, bot_message: BotMessage, data: str, user: dict) -> dict:
        """Queue a callback query with arbitrary `data` (to forge one) on a bot message."""
        query = {
            "id": str(next(self._update_ids) * 1000),
            "from": user,
            "chat_instance": f"ci{bot_message.chat_id}",
            "data": data,
            "message": self._message_dict(bot_message),
        }
        self._push({"callback_query": query})
        return query

    def fail_next(self, method: str, description: str = "Bad Request", code: int = 400) -> None:
        """Make the next call of `method` fail as Telegram would (to test error handling)."""
        self._failures.setdefault(method, []).append(ApiError(description, code))

    # ---------------------------------------------------------------- reading the bot's output
    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Wait until `predicate()` is truthy (re-checked after every change); return its value."""
        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout}s waiting for the bot") from None

    def messages(self, chat_id: int) -> list[BotMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    async def next_from_bot(self, chat_id: int, timeout: float = 10.0) -> BotMessage:  # noqa: ASYNC109
        """The next message the bot sent to `chat_id` that this method has not returned yet."""
        start = self._cursor.get(chat_id, 0)

        def ready() -> BotMessage | None:
            sent = self.messages(chat_id)
            return sent[start] if len(sent) > start else None

        found = await self.wait_for(ready, timeout)
        self._cursor[chat_id] = start + 1
        return found

    async def answer_for(self, query: dict, timeout: float = 10.0) -> dict:  # noqa: ASYNC109
        """The bot's answerCallbackQuery for a queued callback query."""

        def ready() -> dict | None:
            return next(
                (a for a in self.callback_answers if a["callback_query_id"] == query["id"]), None
            )

        return await self.wait_for(ready, timeout)

    async def quiet(self, seconds: float = 0.3) -> None:
        """Let the bot drain its queue (for asserting that nothing was sent)."""
        await self.wait_for(lambda: not self._updates, timeout=10)
        await asyncio.sleep(seconds)

    # ---------------------------------------------------------------- the HTTP side
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await self._params(request)
        self.calls.append((method, params))
        handler = getattr(self, f"_api_{method}", None)
        try:
            if self._failures.get(method):
                raise self._failures[method].pop(0)
            if handler is None:
                log.warning("fake Telegram: unknown method %s", method)
                self.unknown_calls.append(method)
                raise ApiError("Not Found", 404)
            result = await handler(params)
        except ApiError as exc:
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            return web.json_response(body, status=exc.code)
        finally:
            if method != "getUpdates":
                self._notify()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if part.filename:
                    params[part.name] = (part.filename, await part.read())
                else:
                    params[part.name] = await part.text()
        elif request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        # Non-string values arrive as JSON inside the form.
        for key in ("reply_markup", "entities", "commands", "scope", "reply_parameters"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _message_dict(self, m: BotMessage) -> dict:
        chat_type = "private" if m.chat_id > 0 else "supergroup"
        out: dict[str, Any] = {
            "message_id": m.message_id,
            "date": int(time.time()),
            "chat": {"id": m.chat_id, "type": chat_type},
            "from": self.bot_user,
        }
        if m.method == "sendMessage":
            out["text"] = m.text or ""
        elif m.method == "sendPhoto":
            out["photo"] = [
                {"file_id": f"photo{m.message_id}", "file_unique_id": f"p{m.message_id}",
                 "width": 800, "height": 500, "file_size": len(m.file_bytes or b"")}
            ]  # fmt: skip
        elif m.method == "sendDocument":
            out["document"] = {
                "file_id": f"doc{m.message_id}",
                "file_unique_id": f"d{m.message_id}",
                "file_name": m.file_name,
                "file_size": len(m.file_bytes or b""),
            }
        if m.method != "sendMessage" and m.text:
            out["caption"] = m.text
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        return out

    @staticmethod
    def _text(params: dict, key: str = "text", limit: int = MAX_TEXT) -> tuple[str, str]:
        raw = params.get(key, "")
        if key == "text" and not raw.strip():
            raise ApiError("Bad Request: message text is empty")
        plain = parse_html(raw) if params.get("parse_mode", "").upper() == "HTML" else raw
        if utf16_len(plain) > limit:
            which = "message" if key == "text" else "message caption"
            raise ApiError(f"Bad Request: {which} is too long")
        return raw, plain

    @staticmethod
    def _chat_id(params: dict) -> int:
        try:
            return int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError("Bad Request: chat not found") from None

    def _record(self, method: str, params: dict, **fields: Any) -> dict:
        chat_id = self._chat_id(params)
        reply_to = params.get("reply_parameters", {}) or {}
        message = BotMessage(
            message_id=self._next_message_id(chat_id),
            chat_id=chat_id,
            method=method,
            reply_markup=params.get("reply_markup"),
            reply_to=reply_to.get("message_id"),
            **fields,
        )
        self.sent.append(message)
        self._by_key[(chat_id, message.message_id)] = message
        return self._message_dict(message)

    def _find(self, params: dict) -> BotMessage:
        key = (self._chat_id(params), int(params.get("message_id", 0)))
        if key not in self._by_key:
            raise ApiError("Bad Request: message to edit not found")
        return self._by_key[key]

    # ---------------------------------------------------------------- Bot API methods
    async def _api_getMe(self, params: dict) -> dict:
        return self.bot_user

    async def _api_deleteWebhook(self, params: dict) -> bool:
        return True

    async def _api_setMyCommands(self, params: dict) -> bool:
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        self.commands[scope] = params.get("commands", [])
        return True

    async def _api_deleteMyCommands(self, params: dict) -> bool:
        return True

    async def _api_getMyCommands(self, params: dict) -> list:
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        return self.commands.get(scope, [])

    async def _api_close(self, params: dict) -> bool:
        return True

    async def _api_getUpdates(self, params: dict) -> list[dict]:
        self.get_updates_calls += 1
        offset = int(params.get("offset", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        timeout = float(params.get("timeout", 0) or 0)
        # Updates below the offset are confirmed: drop them for good, as Telegram does.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._notify()  # waiters see the poll (the bot is up) and confirmed updates (`quiet()`)
        if not self._updates and timeout > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self._updates or self._closing), timeout
                    )
                except TimeoutError:
                    pass
        return self._updates[:limit]

    async def _api_sendMessage(self, params: dict) -> dict:
        raw, plain = self._text(params)
        return self._record("sendMessage", params, text=plain, raw_text=raw)

    async def _api_sendPhoto(self, params: dict) -> dict:
        return self._send_file("sendPhoto", params, "photo")

    async def _api_sendDocument(self, params: dict) -> dict:
        return self._send_file("sendDocument", params, "document")

    def _send_file(self, method: str, params: dict, key: str) -> dict:
        upload = params.get(key)
        if not isinstance(upload, tuple):
            raise ApiError(f"Bad Request: there is no {key} in the request")
        name, data = upload
        caption = None
        if params.get("caption"):
            _, caption = self._text(params, "caption", MAX_CAPTION)
        return self._record(method, params, text=caption, file_bytes=data, file_name=name)

    async def _api_editMessageText(self, params: dict) -> dict:
        message = self._find(params)
        raw, plain = self._text(params)
        markup = params.get("reply_markup")
        if plain == message.text and markup == message.reply_markup:
            raise ApiError(
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message"
            )
        message.edits.append(message.text or "")
        message.text, message.raw_text, message.reply_markup = plain, raw, markup
        return self._message_dict(message)

    async def _api_editMessageReplyMarkup(self, params: dict) -> dict:
        message = self._find(params)
        markup = params.get("reply_markup")
        if markup == message.reply_markup:
            raise ApiError("Bad Request: message is not modified")
        message.reply_markup = markup
        return self._message_dict(message)

    async def _api_answerCallbackQuery(self, params: dict) -> bool:
        if len(params.get("text", "")) > 200:
            raise ApiError("Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(params)
        return True

    async def _api_sendChatAction(self, params: dict) -> bool:
        return True
