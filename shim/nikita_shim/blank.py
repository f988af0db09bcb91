"""The project's one definition of a blank text, shared with SQL (nikita's settings and
content checks): empty after removing every Unicode White_Space character and the invisible
format characters U+180E, U+200B, U+200C, U+200D, U+2060, U+FEFF.

Python's str.isspace()/strip() differ from it both ways (they treat U+001C..U+001F as space
and keep U+200B), so the shim never uses them to decide blankness.
"""

from __future__ import annotations

WHITE_SPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
INVISIBLE = "\u180e\u200b\u200c\u200d\u2060\ufeff"
BLANK_CHARS = frozenset(WHITE_SPACE + INVISIBLE)
_STRIP = WHITE_SPACE + INVISIBLE


def is_blank(text: str | None) -> bool:
    """True for None, '' and texts made only of blank characters."""
    return text is None or all(ch in BLANK_CHARS for ch in text)


def strip_blank(text: str) -> str:
    """`text` without leading and trailing blank characters."""
    return text.strip(_STRIP)
