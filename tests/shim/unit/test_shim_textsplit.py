"""Splitting of long Telegram texts at paragraph or sentence boundaries."""

from __future__ import annotations

import pytest

from nikita_shim.textsplit import split_text, utf16_len


def test_short_text_is_one_piece():
    assert split_text("hello") == ["hello"]
    assert split_text("x" * 4096) == ["x" * 4096]


def test_paragraph_boundaries_preferred():
    paras = [f"P{i} " + "a" * 1500 + "." for i in range(6)]
    pieces = split_text("\n\n".join(paras))
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert all(p.startswith("P") for p in pieces)
    assert "\n\n".join(pieces) == "\n\n".join(paras)


def test_sentence_boundary_when_no_paragraph():
    sentence = "This is a sentence that goes on for a while. "
    text = sentence * 300
    pieces = split_text(text.strip(), limit=1000)
    assert all(len(p) <= 1000 for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text.strip()


def test_order_and_content_preserved_with_mixed_boundaries():
    text = "\n".join(f"Line {i}: " + "word " * (i % 40) + "end." for i in range(800))
    pieces = split_text(text, limit=500)
    assert all(len(p) <= 500 for p in pieces)
    assert "".join(pieces).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )


def test_hard_cut_without_any_boundary():
    pieces = split_text("x" * 10000)
    assert [len(p) for p in pieces] == [4096, 4096, 1808]


def test_astral_characters_count_twice():
    text = "😀" * 3000  # 6,000 UTF-16 units
    pieces = split_text(text)
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert "".join(pieces) == text
    assert len(pieces) == 2


def test_tiny_limit_rejected():
    with pytest.raises(ValueError):
        split_text("abc", limit=3)
