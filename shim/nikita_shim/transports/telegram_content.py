"""A Telegram event's content, decoded by exactly the rules SQL guarantees.

`nikita.schedule_event` and `schedule_reply` (docs/queue.md, "The Telegram content
contract") are the one source of truth; this module accepts what they store and nothing more,
so that a row written around them (or by an older release) fails permanently with its reason
instead of being sent differently from what the game asked for:

    chat_id               JSON integer, non-zero, within ±(2^63 - 1) (123.0 is the integer 123;
                          written with a decimal point it must stay below 2^53, as Telegram's
                          chat ids do: they have at most 52 significant bits)
    text                  string of 1..32,768 characters, not blank (nikita_shim.blank)
    parse_mode            "HTML" or "MarkdownV2", exactly
    reply_markup          JSON object (its inner rules are SQL's; passed through as is)
    disable_notification  boolean
    response_id           string holding a UUID, 8-4-4-4-12 hex digits (the game's reply id):
                          checked, never sent
    meta                  JSON object, no value more than 4 levels below it, at most 4,096
                          bytes of JSON text: checked, never sent (the size exactly as SQL's
                          octet_length(meta::text) unless meta holds a non-integer number,
                          whose PostgreSQL text the decoded float no longer gives: then SQL's
                          check alone stands)
    any other key         refused

A key holding JSON null is refused too: schedule_event drops such keys before storing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..blank import is_blank

PARSE_MODES = frozenset({"HTML", "MarkdownV2"})
TEXT_LIMIT = 32768  # characters (code points), as SQL's length()
KEYS = frozenset(
    {"chat_id", "text", "parse_mode", "reply_markup", "disable_notification", "response_id", "meta"}
)
UUID_TEXT = re.compile("-".join(f"[0-9A-Fa-f]{{{n}}}" for n in (8, 4, 4, 4, 12)))
META_BYTES = 4096
META_LEVELS = 4
BIGINT = 2**63 - 1
EXACT_FLOAT = 2**53  # beyond, a float no longer names one integer


class ContentError(ValueError):
    """The content breaks a rule of schedule_event: fail the event permanently."""


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    chat_id: int
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    disable_notification: bool | None = None


def _chat_id(value: Any) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ContentError(f"chat_id {value!r} is not an integer")
    if value == 0 or abs(value) > BIGINT:
        raise ContentError(f"chat_id {value!r} is not a non-zero bigint")
    return value


def _levels(value: Any) -> int:
    """How many levels the deepest value lies below `value` (jsonpath strict $.**{n})."""
    if isinstance(value, dict):
        return 1 + max(map(_levels, value.values()), default=-1)
    if isinstance(value, list):
        return 1 + max(map(_levels, value), default=-1)
    return 0


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(map(_has_float, value.values()))
    if isinstance(value, list):
        return any(map(_has_float, value))
    return isinstance(value, float)


def _check_meta(meta: Any) -> None:
    if not isinstance(meta, dict):
        raise ContentError("meta is not a JSON object")
    if _levels(meta) > META_LEVELS:
        raise ContentError(f"meta is nested too deeply: at most {META_LEVELS} levels")
    if not _has_float(meta):
        # jsonb's text: the same separators and escapes as json.dumps; key order changes nothing
        size = len(json.dumps(meta, ensure_ascii=False).encode())
        if size > META_BYTES:
            raise ContentError(f"meta is {size} bytes; at most {META_BYTES}")


def decode_message(content: Mapping[str, Any]) -> TelegramMessage:
    """The message to send, or ContentError naming the broken rule."""
    unknown = sorted(k for k in content if k not in KEYS)
    if unknown:
        raise ContentError("unknown key(s): " + ", ".join(unknown))
    nulls = sorted(k for k, v in content.items() if v is None)
    if nulls:
        raise ContentError("null value(s): " + ", ".join(nulls))
    chat_id = _chat_id(content.get("chat_id"))
    text = content.get("text")
    if not isinstance(text, str) or is_blank(text):
        raise ContentError("text is missing or empty")
    if len(text) > TEXT_LIMIT:
        raise ContentError(f"text is {len(text)} characters long; at most {TEXT_LIMIT}")
    parse_mode = content.get("parse_mode")
    if parse_mode is not None and parse_mode not in PARSE_MODES:
        raise ContentError(f"unknown parse_mode {parse_mode!r} (HTML or MarkdownV2)")
    reply_markup = content.get("reply_markup")
    if reply_markup is not None and not isinstance(reply_markup, dict):
        raise ContentError("reply_markup is not a JSON object")
    silent = content.get("disable_notification")
    if silent is not None and not isinstance(silent, bool):
        raise ContentError(f"disable_notification {silent!r} is not a boolean")
    response_id = content.get("response_id")
    if response_id is not None and (
        not isinstance(response_id, str) or not UUID_TEXT.fullmatch(response_id)
    ):
        raise ContentError(f"response_id {response_id!r} is not a UUID")
    if "meta" in content:
        _check_meta(content["meta"])
    return TelegramMessage(chat_id, text, parse_mode, reply_markup, silent)
