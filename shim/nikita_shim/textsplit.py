"""Split text longer than one Telegram message at paragraph or sentence boundaries."""

from __future__ import annotations

import re

from .blank import is_blank

TELEGRAM_LIMIT = 4096

# Boundaries, best first. Each pattern matches the separator; the cut goes after the text that
# precedes it and the separator itself is dropped (it would only be leading/trailing blank).
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n\s*"),  # line
    re.compile(r"(?<=[.!?…;])[\"')\]»”]*\s+"),  # sentence
    re.compile(r"\s+"),  # word
)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix_within(text: str, limit: int) -> int:
    """Largest index i such that utf16_len(text[:i]) <= limit."""
    if len(text) <= limit and utf16_len(text) <= limit:
        return len(text)
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split text into pieces of at most `limit` UTF-16 units, in order.

    A piece ends at the last paragraph break inside the limit; failing that at a line break,
    a sentence end, a space, and only as a last resort in the middle of a word. A boundary in
    the first third of the window is only used when nothing better exists, so pieces stay
    reasonably full. Whitespace at the cut is dropped; nothing else is changed.
    """
    if limit < 16:
        raise ValueError("limit too small")
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window_end = _prefix_within(rest, limit)
        window = rest[:window_end]
        cut: tuple[int, int] | None = None
        fallback: tuple[int, int] | None = None
        for pattern in _BOUNDARIES:
            last = None
            for m in pattern.finditer(window):
                if m.start() > 0:
                    last = m
            if last is None:
                continue
            # the separator may run past the window: consume it in the rest as well
            sep = pattern.match(rest, last.start())
            end = sep.end() if sep else last.end()
            if last.start() >= window_end // 3:
                cut = (last.start(), end)
                break
            if fallback is None:
                fallback = (last.start(), end)
        cut = cut or fallback or (window_end, window_end)
        piece = rest[: cut[0]].rstrip()
        if not is_blank(piece):  # a piece of only invisible characters would be refused
            pieces.append(piece)
        rest = rest[cut[1] :]
    if not is_blank(rest):
        pieces.append(rest)
    return pieces


def split_message(text: str, parse_mode: str | None, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Pieces of a message in order. Formatted text (HTML, MarkdownV2) over the limit is split
    by markupsplit so that every piece is valid on its own; it raises markupsplit.MarkupError
    when that cannot be done safely (nothing is to be sent then)."""
    if parse_mode is None or utf16_len(text) <= limit:
        return split_text(text, limit)
    from .markupsplit import split_markup  # imports this module

    return split_markup(text, parse_mode, limit)
