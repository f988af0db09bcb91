"""The shared blank rule (nikita_shim.blank), where the shim applies it: configuration values
and Telegram text. The same list of characters as SQL (docs: BRIEF "blank")."""

from __future__ import annotations

import pytest

from nikita_shim.blank import is_blank, strip_blank
from nikita_shim.config import load_config
from nikita_shim.textsplit import split_text

# Unicode White_Space, listed by code point (not derived from Python's isspace())
WHITE_SPACE = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680]
WHITE_SPACE += [*range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
INVISIBLE = [0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]


@pytest.mark.parametrize("code", WHITE_SPACE + INVISIBLE, ids=lambda c: f"U+{c:04X}")
def test_each_listed_character_is_blank(code):
    ch = chr(code)
    assert is_blank(ch)
    assert is_blank(ch * 3 + " ")
    assert not is_blank(ch + "a")
    assert strip_blank(ch + "a" + ch) == "a"


@pytest.mark.parametrize(
    "text",
    [
        "a",
        ".",
        "\u00ad",  # soft hyphen: a format character, not in the list
        "\u001c",  # Python's isspace() says yes; it is not White_Space
        "\u001f",
        "\u2800",  # braille blank: visible to Telegram, not White_Space
        "\u034f",  # combining grapheme joiner
    ],
)
def test_other_characters_are_not_blank(text):
    assert not is_blank(text)


def test_empty_and_none_are_blank():
    assert is_blank("") and is_blank(None)


def test_a_blank_configuration_value_is_unset():
    cfg = load_config(
        {
            "DATABASE_URL": "postgresql:///db",
            "NIKITA_SHIM_WORKER_ID": "\u200b\u00a0\u3000",  # blank: the default applies
            "NIKITA_SHIM_BATCH_SIZE": "\ufeff7\u2060",
        },
        need_delivery=False,
    )
    assert cfg.worker_id.strip("\u200b\u00a0\u3000") == cfg.worker_id  # the default
    assert ":" in cfg.worker_id
    assert cfg.batch_size == 7


def test_split_text_drops_blank_pieces():
    text = "a" * 4000 + "\n\n" + "\u200b" * 200 + "\n\n" + "b" * 10
    pieces = split_text(text, 4096)
    assert all(not is_blank(p) for p in pieces)
