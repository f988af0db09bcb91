"""The Telegram transport decodes content by exactly the rules of nikita.schedule_event: what
SQL refuses (and the shim used to accept) fails the event permanently."""

from __future__ import annotations

import dataclasses

import pytest

from nikita_shim.transports.telegram_content import ContentError, decode_message

GOOD = {"chat_id": 42, "text": "hi"}


def test_what_sql_stores_is_decoded() -> None:
    message = decode_message(
        {
            "chat_id": -1001234567890,
            "text": "x" * 32768,
            "parse_mode": "MarkdownV2",
            "reply_markup": {"remove_keyboard": True},
            "disable_notification": False,
        }
    )
    assert message.chat_id == -1001234567890
    assert message.parse_mode == "MarkdownV2"
    assert message.reply_markup == {"remove_keyboard": True}
    assert message.disable_notification is False
    assert decode_message(GOOD | {"parse_mode": "HTML"}).parse_mode == "HTML"


def test_an_integral_number_is_a_chat_id() -> None:
    # jsonb keeps 42.0 as written; schedule_event accepts it (an integer value)
    assert decode_message(GOOD | {"chat_id": 42.0}).chat_id == 42


def test_absent_optional_keys_are_none() -> None:
    message = decode_message(GOOD)
    assert message.parse_mode is None and message.disable_notification is None
    assert message.reply_markup is None


GAME_REPLY = {"chat_id": 5001, "text": "hey", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}


@pytest.mark.parametrize(
    "content",
    [
        GAME_REPLY,  # what the game's store_pending_response writes
        GOOD | {"response_id": "0B8E6F2A-3C1D-4E5F-8A9B-0C1D2E3F4A5B"},
        GOOD | {"meta": {}},
        GOOD | {"meta": {"source": "handler", "k": [1, True, None]}},
        GOOD | {"meta": {"a": {"b": {"c": {"d": 1}}}}},  # 4 levels
        GOOD | {"meta": {"a": [[[1]]]}},
        GOOD | {"meta": {"a": "x" * 4087}},  # 4,096 bytes exactly
        GOOD | {"meta": {"a": "\u00e9" * 2043 + "x"}},
        GOOD | {"meta": {"a": "\n" * 2043 + "x"}},  # 2,043 escapes of 2 bytes
        # a float: PostgreSQL's text of it is unknown here, SQL's size check alone stands
        GOOD | {"meta": {"a": "x" * 4087, "f": 0.5}},
    ],
)
def test_the_games_keys_are_accepted_and_not_sent(content: dict[str, object]) -> None:
    message = decode_message(content)
    assert message.text == content["text"]
    sent = {field.name for field in dataclasses.fields(message)}  # what telegram.py sends
    assert not any(key in ("response_id", "meta") for key in sent)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # the shim accepted these before; schedule_event refuses them
        ({"chat_id": "42"}, "chat_id '42' is not an integer"),
        ({"chat_id": "-100123"}, "is not an integer"),
        ({"parse_mode": "Markdown"}, "unknown parse_mode 'Markdown'"),
        ({"parse_mode": "markdown"}, "unknown parse_mode"),
        ({"parse_mode": "html"}, "unknown parse_mode"),
        ({"disable_notification": 1}, "disable_notification 1 is not a boolean"),
        ({"disable_notification": "yes"}, "is not a boolean"),
        ({"reply_markup": [[{"text": "a"}]]}, "reply_markup is not a JSON object"),
        ({"text": "x" * 32769}, "text is 32769 characters long; at most 32768"),
        ({"disable_notifications": True}, "unknown key(s): disable_notifications"),
        ({"chat_id": 0}, "is not a non-zero bigint"),
        ({"chat_id": 2**63}, "is not a non-zero bigint"),
        ({"chat_id": 42.5}, "is not an integer"),
        ({"chat_id": True}, "is not an integer"),
        ({"chat_id": 2.0**53}, "is not an integer"),
        # schedule_event drops null keys: a stored null was written around it
        ({"parse_mode": None}, "null value(s): parse_mode"),
        ({"disable_notification": None}, "null value(s): disable_notification"),
        # refused before as well
        ({"chat_id": None}, "null value(s): chat_id"),
        ({"text": " \u200b"}, "text is missing or empty"),
        ({"text": 7}, "text is missing or empty"),
        ({"parse_mode": "Fancy"}, "unknown parse_mode"),
        # the game's keys (docs/queue.md): refused as SQL refuses them
        ({"response_id": 12}, "response_id 12 is not a UUID"),
        ({"response_id": "0b8e6f2a3c1d4e5f8a9b0c1d2e3f4a5b"}, "is not a UUID"),
        ({"response_id": "{0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b}"}, "is not a UUID"),
        ({"response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5g"}, "is not a UUID"),
        ({"response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b\n"}, "is not a UUID"),
        ({"response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5\u0661"}, "is not a UUID"),
        ({"response_id": None}, "null value(s): response_id"),
        ({"meta": None}, "null value(s): meta"),
        ({"meta": [1]}, "meta is not a JSON object"),
        ({"meta": "x"}, "meta is not a JSON object"),
        ({"meta": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "meta is nested too deeply"),
        ({"meta": {"a": [[[[1]]]]}}, "meta is nested too deeply"),
        ({"meta": {"a": "x" * 4088}}, "meta is 4097 bytes; at most 4096"),
        ({"meta": {"a": "\u00e9" * 2044}}, "meta is 4097 bytes; at most 4096"),
        ({"meta": {"a": "\n" * 2044}}, "meta is 4097 bytes; at most 4096"),
        ({"source_platform": "telegram"}, "unknown key(s): source_platform"),
        ({"responseId": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}, "unknown key(s): responseId"),
    ],
)
def test_what_sql_refuses_is_a_content_error(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ContentError) as err:
        decode_message(GOOD | change)
    assert reason in str(err.value)
