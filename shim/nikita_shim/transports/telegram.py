"""Telegram transport: python-telegram-bot's Bot, rate limited, long texts split in order."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from ..events import ClaimedEvent, Kind, Outcome
from ..markupsplit import MarkupError
from ..ratelimit import RateLimiter
from ..redact import Redactor
from ..textsplit import TELEGRAM_LIMIT, split_message
from . import DeliveryContext
from .telegram_content import ContentError, decode_message

log = logging.getLogger("nikita_shim.telegram")

# Retries of a later piece of a split message, inside one delivery: resending the whole
# message on a transient fault would duplicate the pieces already delivered.
PIECE_RETRIES = 2


def retry_after_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class TelegramTransport:
    platform = "telegram"
    name = "telegram"

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        limiter: RateLimiter,
        max_wait: float,
        timeout: float,
        pool_size: int,
    ) -> None:
        self._token = token
        self._redact = Redactor((token,))
        self._limiter = limiter
        self._max_wait = max_wait
        self._timeout = timeout
        request = HTTPXRequest(
            connection_pool_size=pool_size,
            read_timeout=timeout,
            write_timeout=timeout,
            connect_timeout=min(timeout, 5.0),
            pool_timeout=timeout,
        )
        self._bot = Bot(
            token,
            base_url=base_url,
            request=request,
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        self._disabled: str | None = None

    @property
    def disabled(self) -> str | None:
        return self._disabled

    def _clean(self, text: str) -> str:
        return self._redact.error(text)

    async def start(self) -> None:
        try:
            await self._bot.initialize()  # getMe: verifies the token
            log.info("telegram bot ready", extra={"fields": {"bot": self._bot.username}})
        except InvalidToken:
            self._disable("getMe")
        except TelegramError as exc:
            log.warning(
                "telegram getMe failed; delivering anyway",
                extra={"fields": {"error": self._clean(str(exc))}},
            )

    def _disable(self, where: str) -> None:
        self._disabled = "401 Unauthorized: the bot token was rejected"
        log.error(
            "TELEGRAM BOT TOKEN REJECTED: telegram delivery stopped until the token is fixed "
            "and the shim restarted; telegram events stay pending",
            extra={"fields": {"where": where}},
        )

    async def close(self) -> None:
        try:
            await self._bot.shutdown()
        except Exception:  # closing is best effort
            log.debug("telegram shutdown failed", exc_info=True)

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        if self._disabled:
            return Outcome.disabled(self._disabled)
        try:
            message = decode_message(event.content)
        except ContentError as exc:
            return Outcome.permanent(f"bad content: {exc}")
        chat_id, text, reply_markup = message.chat_id, message.text, message.reply_markup
        kwargs: dict[str, Any] = {}
        if message.parse_mode is not None:
            kwargs["parse_mode"] = message.parse_mode
        if message.disable_notification is not None:
            kwargs["disable_notification"] = message.disable_notification

        try:  # HTML and MarkdownV2 pieces are each valid on their own (markupsplit.py)
            pieces = split_message(text, message.parse_mode, TELEGRAM_LIMIT)
        except MarkupError as exc:
            return Outcome.permanent(f"cannot deliver: {exc}")
        refs: list[str] = []
        for index, piece in enumerate(pieces):
            first = index == 0
            last = index == len(pieces) - 1
            wait = self._limiter.reserve_key(chat_id, self._max_wait if first else math.inf)
            if wait is None:
                return Outcome.defer(self._max_wait, "rate limited (per-chat/global limit)")
            if not await ctx.sleep(wait) and first:
                return Outcome.release()
            if not await ctx.sleep(self._limiter.reserve_global()) and first:
                return Outcome.release()
            if first:
                ctx.calling()
            piece_kwargs = dict(kwargs)
            if last and reply_markup is not None:
                piece_kwargs["reply_markup"] = reply_markup
            tries = 0
            while True:
                tries += 1
                result = await self._send(chat_id, piece, piece_kwargs)
                if isinstance(result, int):
                    refs.append(str(result))
                    break
                if isinstance(result, ChatMigrated) and tries <= 1:
                    chat_id = result.new_chat_id
                    continue
                outcome = self._outcome(result, chat_id)
                if (
                    first
                    or outcome.kind not in (Kind.RETRY, Kind.DEFERRED)
                    or tries > PIECE_RETRIES
                ):
                    if refs:
                        outcome = Outcome(
                            outcome.kind,
                            error=f"{outcome.error} (after {len(refs)} of {len(pieces)} pieces "
                            f"were delivered: message ids {','.join(refs)})",
                            delay=outcome.delay,
                        )
                    return outcome
                # a later piece hit a transient fault: wait and resend that piece only
                pause = outcome.delay if outcome.kind is Kind.DEFERRED else float(tries)
                await ctx.sleep(min(pause, self._max_wait))
        return Outcome.delivered(",".join(refs))

    async def _send(self, chat_id: int, text: str, kwargs: dict[str, Any]) -> int | TelegramError:
        try:
            message = await self._bot.send_message(chat_id=chat_id, text=text, **kwargs)
        except TelegramError as exc:
            return exc
        return message.message_id

    def _outcome(self, exc: TelegramError, chat_id: int) -> Outcome:
        # Order matters: BadRequest and TimedOut are NetworkError subclasses.
        if isinstance(exc, RetryAfter):
            seconds = retry_after_seconds(exc)
            self._limiter.penalize(chat_id, seconds)
            return Outcome.defer(seconds, f"429 Too Many Requests: retry after {seconds:g}s")
        if isinstance(exc, Forbidden):
            return Outcome.permanent(f"403 Forbidden: {self._clean(exc.message)}")
        if isinstance(exc, InvalidToken):
            if not self._disabled:
                self._disable("sendMessage")
            return Outcome.disabled(self._disabled or "401 Unauthorized")
        if isinstance(exc, ChatMigrated):
            return Outcome.permanent(f"chat migrated to {exc.new_chat_id} twice")
        if isinstance(exc, BadRequest):
            return Outcome.permanent(f"400 Bad Request: {self._clean(exc.message)}")
        if isinstance(exc, TimedOut):
            return Outcome.retry(f"timed out: {self._clean(exc.message)}")
        if isinstance(exc, NetworkError):
            return Outcome.retry(f"network error: {self._clean(exc.message)}")
        return Outcome.retry(f"telegram error: {self._clean(exc.message)}")
