"""A fake Telegram Bot API: getMe and sendMessage, checked as the real API checks them.

Requests are accepted form-encoded, multipart-free, JSON or in the query string, like the real
server. Failures are scripted per chat: `script(chat_id, "429:3", "ok")` answers the next
sendMessage to that chat with 429 retry_after=3, then succeeds; `always(chat_id, "403")`
answers every one with 403. Codes: ok, 429:<s>, 403, 400 (chat not found), 500, slow:<s>
(delivers, but answers after <s> seconds), 401. A `Reply` may be scripted as well: it is sent
as it is (e.g. an error text that echoes the token, or a broken response). A text with
parse_mode HTML or MarkdownV2 is parsed as Telegram documents it (markup.py); a broken rule is
refused with 400 "can't parse entities: ...".
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .base import FakeServer, Reply
from .markup import EntityError, parse

TOKEN = "123456789:AAF-fake-token-for-tests-0123456789ab"
PARSE_MODES = {"HTML", "MarkdownV2", "Markdown"}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


class FakeTelegram(FakeServer):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self._scripts: dict[int, deque[str | Reply]] = defaultdict(deque)
        self._always: dict[int, str] = {}
        self._next_id: dict[int, int] = defaultdict(lambda: 1000)

    @property
    def base_url(self) -> str:
        """What TELEGRAM_API_BASE should be (python-telegram-bot appends the token)."""
        return f"{self.url}/bot"

    def script(self, chat_id: int, *codes: str | Reply) -> None:
        with self.lock:
            self._scripts[chat_id].extend(codes)

    def always(self, chat_id: int, code: str) -> None:
        with self.lock:
            self._always[chat_id] = code

    def texts(self, chat_id: int) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.messages if m["chat_id"] == chat_id]

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages)

    def attempts(self, chat_id: int) -> int:
        with self.lock:
            return sum(1 for m in self.messages + self.rejected if m.get("chat_id") == chat_id)

    # ---- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", parts.path)
        if not m:
            return _error(404, "Not Found")
        token, api_method = m.group(1), m.group(2).lower()
        if token != self.token:
            return _error(401, "Unauthorized")
        params, problem = self._params(headers, body, parts.query)
        if problem:
            return _error(400, f"Bad Request: {problem}")
        if api_method == "getme":
            return Reply(200, {"ok": True, "result": self._bot_user()})
        if api_method == "sendmessage":
            return self._send_message(params, headers)
        return _error(404, "Not Found: method not found")

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":")[0]),
            "is_bot": True,
            "first_name": "Nikita",
            "username": "nikita_test_bot",
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    @staticmethod
    def _params(headers: dict[str, str], body: bytes, query: str) -> tuple[dict[str, Any], str]:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if not body:
            return params, ""
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                return params, "can't parse JSON"
            if not isinstance(data, dict):
                return params, "JSON object expected"
            params.update(data)
        elif ctype == "application/x-www-form-urlencoded":
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        else:
            return params, f"unsupported content type {ctype!r}"
        return params, ""

    def _next_code(self, chat_id: int) -> str | Reply:
        with self.lock:
            if self._scripts[chat_id]:
                return self._scripts[chat_id].popleft()
            return self._always.get(chat_id, "ok")

    def _send_message(self, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        raw_chat = params.get("chat_id")
        try:
            chat_id = int(raw_chat)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _error(
                400,
                "Bad Request: chat_id is empty"
                if raw_chat is None
                else "Bad Request: chat not found",
            )
        text = params.get("text")
        record = {"chat_id": chat_id, "text": text, "t": time.time()}
        if not isinstance(text, str) or not text.strip():
            self.rejected.append(record)
            return _error(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            self.rejected.append(record)
            return _error(400, "Bad Request: message is too long")
        parse_mode = params.get("parse_mode")
        if parse_mode is not None and parse_mode not in PARSE_MODES:
            return _error(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if parse_mode in ("HTML", "MarkdownV2"):  # checked as Telegram documents it
            try:
                shown = parse(text, parse_mode)
            except EntityError as exc:
                self.rejected.append(record)
                return _error(400, f"Bad Request: can't parse entities: {exc}")
            if not "".join(ch for ch, _ in shown).strip():
                self.rejected.append(record)
                return _error(400, "Bad Request: message text is empty")
        markup = params.get("reply_markup")
        if markup is not None:
            if isinstance(markup, str):
                try:
                    markup = json.loads(markup)
                except ValueError:
                    markup = None
            if not isinstance(markup, dict):
                return _error(400, "Bad Request: can't parse reply keyboard markup JSON object")
        silent = params.get("disable_notification")
        if isinstance(silent, str):
            silent = {"true": True, "false": False}.get(silent.lower(), "invalid")
        if silent == "invalid":
            return _error(400, "Bad Request: disable_notification must be a boolean")

        code = self._next_code(chat_id)
        if isinstance(code, Reply):
            record.update(code="reply")
            self.rejected.append(record)
            return code
        record.update(code=code)
        if code.startswith("429"):
            seconds = int(code.split(":")[1]) if ":" in code else 1
            self.rejected.append(record)
            return _error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
        if code == "403":
            self.rejected.append(record)
            return _error(403, "Forbidden: bot was blocked by the user")
        if code == "400":
            self.rejected.append(record)
            return _error(400, "Bad Request: chat not found")
        if code == "401":
            self.rejected.append(record)
            return _error(401, "Unauthorized")
        if code == "500":
            self.rejected.append(record)
            return _error(500, "Internal Server Error")
        delay = float(code.split(":")[1]) if code.startswith("slow") else 0.0
        with self.lock:
            self._next_id[chat_id] += 1
            message_id = self._next_id[chat_id]
            record.update(
                message_id=message_id,
                parse_mode=parse_mode,
                reply_markup=markup,
                disable_notification=silent,
                content_type=headers.get("content-type", "").split(";")[0],
            )
            self.messages.append(record)
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Player"},
            "from": self._bot_user(),
            "text": text,
        }
        return Reply(200, {"ok": True, "result": result}, delay=delay)
