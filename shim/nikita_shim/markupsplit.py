"""Split a long HTML or MarkdownV2 message into parts that are each valid on their own.

The text is read into tokens (a character, an entity `&amp;` or an escape `\\.` whole; a tag
or an entity marker; an atom). Cuts fall only between tokens, preferably at a paragraph, a
line, a sentence end or a space (as textsplit does for plain text). Each part closes the
entities open at its end and the next part reopens them (HTML tags with their attributes,
MarkdownV2 markers; a MarkdownV2 block-quote line continues with `>`).

Atoms are never cut, because a cut would change what the player sees or break a reference:
HTML `<a>`, `<code>`, `<pre>`, `<tg-emoji>` elements; MarkdownV2 inline links, custom emoji,
inline code, pre blocks and expandable block quotes (`**>` ... `||`). An atom that does not
fit in one part together with the entities open around it, or markup that is not valid
(Telegram would refuse it), raises MarkupError: the event fails permanently, nothing is sent.

Lengths count raw characters in UTF-16 units, markup included: a conservative bound of what
Telegram counts after parsing.

Over 300 lines: the two readers and the splitter share one token model; apart they would
need a module of their own for a dozen lines each.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .blank import is_blank
from .textsplit import utf16_len

HTML_TAGS = frozenset(
    "b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji".split()
)
HTML_ATOMS = frozenset({"a", "code", "pre", "tg-emoji"})
HTML_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})
MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_SENTENCE_END = frozenset(".!?…;")
_CLOSING_QUOTES = frozenset("\"')]»”")
_HTML_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s[^<>]*)?)>"  # a tag
    r"|&(#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);"  # an entity
    r"|([\s\S])"  # a character
)


class MarkupError(ValueError):
    """The text cannot be split into valid parts."""


@dataclass(frozen=True, slots=True)
class Tok:
    raw: str
    kind: str  # text | open | close | atom | quote
    char: str = ""  # text: the character shown
    name: str = ""  # open/close: the entity


def _html_tokens(text: str) -> list[Tok]:
    toks: list[Tok] = []
    for m in _HTML_TOKEN.finditer(text):
        slash, name, attrs, entity, char = m.groups()
        if name is not None:
            name = name.lower()
            if name not in HTML_TAGS:
                raise MarkupError(f"not valid HTML: unsupported tag <{name}>")
            if name == "span" and not slash and "tg-spoiler" not in (attrs or ""):
                raise MarkupError('not valid HTML: <span> needs class="tg-spoiler"')
            toks.append(Tok(m.group(0), "close" if slash else "open", name=name))
        elif entity is not None:
            if not entity.startswith("#") and entity not in HTML_ENTITIES:
                raise MarkupError(f"not valid HTML: unsupported entity &{entity};")
            toks.append(Tok(m.group(0), "text", html.unescape(m.group(0))))
        elif char in "<>&":
            raise MarkupError(f"not valid HTML: a bare {char!r} (write &lt; &gt; &amp;)")
        else:
            toks.append(Tok(char, "text", char))
    return _group_html_atoms(toks)


def _group_html_atoms(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    stack: list[str] = []
    atom_at: int | None = None  # depth of the open atom
    start = 0
    for i, tok in enumerate(toks):
        if tok.kind == "open":
            if atom_at is None and tok.name in HTML_ATOMS:
                atom_at, start = len(stack), i
            stack.append(tok.name)
        elif tok.kind == "close":
            if not stack or stack[-1] != tok.name:
                raise MarkupError(f"not valid HTML: </{tok.name}> closes no open <{tok.name}>")
            stack.pop()
            if atom_at is not None and len(stack) == atom_at:
                out.append(Tok("".join(t.raw for t in toks[start : i + 1]), "atom", tok.name))
                atom_at = None
                continue
        if atom_at is None:
            out.append(tok)
    if stack:
        raise MarkupError(f"not valid HTML: <{stack[-1]}> is never closed")
    return out


def _md_scan(text: str, i: int, end: str) -> int:
    """Index just past the first unescaped `end` from i (escapes skipped)."""
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(end, i):
            return i + len(end)
        i += 1
    raise MarkupError(f"not valid MarkdownV2: no closing {end!r}")


def _md_atom_end(text: str, i: int, line_start: bool) -> int | None:
    if text.startswith("```", i):
        return _md_scan(text, i + 3, "```")
    if text[i] == "`":
        return _md_scan(text, i + 1, "`")
    if text[i] == "[" or text.startswith("![", i):
        j = _md_scan(text, i + (2 if text[i] == "!" else 1), "]")
        if not text.startswith("(", j):
            raise MarkupError("not valid MarkdownV2: '[' must be escaped unless it starts a link")
        return _md_scan(text, j + 1, ")")
    if line_start and text.startswith("**>", i):
        m = re.compile(r"\|\|[ \t]*(?:\n|$)").search(text, i)  # the block's end marker
        nxt = text.find("\n", i)
        while m is not None and nxt != -1 and nxt < m.start():
            if not text.startswith(">", nxt + 1):
                return None  # the quote ends before any '||': an ordinary quote
            nxt = text.find("\n", nxt + 1)
        return m.start() + 2 if m else None
    return None


def _md_tokens(text: str) -> list[Tok]:
    toks: list[Tok] = []
    stack: list[str] = []
    i, n, line_start = 0, len(text), True
    while i < n:
        c = text[i]
        end = _md_atom_end(text, i, line_start)
        if end is not None:
            toks.append(Tok(text[i:end], "atom", "x"))
            i, line_start = end, False
            continue
        if c == "\\":
            if i + 1 >= n or not 1 <= ord(text[i + 1]) <= 126:
                raise MarkupError("not valid MarkdownV2: '\\' must escape a character 1..126")
            toks.append(Tok(text[i : i + 2], "text", text[i + 1]))
            i, line_start = i + 2, text[i + 1] == "\n"
            continue
        if line_start and (c == ">" or text.startswith("**>", i)):
            raw = "**>" if c == "*" else ">"
            toks.append(Tok(raw, "quote"))
            i, line_start = i + len(raw), False
            continue
        marker = {"*": "*", "~": "~", "_": "__" if text.startswith("__", i) else "_"}.get(c)
        if c == "|" and text.startswith("||", i):
            marker = "||"
        if marker is not None:
            if marker in stack and stack[-1] != marker:
                raise MarkupError(f"not valid MarkdownV2: {marker!r} entities overlap")
            kind = "close" if marker in stack else "open"
            stack.pop() if kind == "close" else stack.append(marker)
            toks.append(Tok(marker, kind, name=marker))
            i, line_start = i + len(marker), False
            continue
        if c in MD_RESERVED:
            raise MarkupError(f"not valid MarkdownV2: character {c!r} must be escaped")
        toks.append(Tok(c, "text", c))
        i, line_start = i + 1, c == "\n"
    if stack:
        raise MarkupError(f"not valid MarkdownV2: {stack[-1]!r} is never closed")
    return toks


def _closer(tok: Tok, mode: str) -> str:
    return f"</{tok.name}>" if mode == "HTML" else tok.raw


def _underscore(tok: Tok | None) -> bool:
    return tok is not None and tok.kind in ("open", "close") and tok.raw.startswith("_")


# empty entities that keep two _ markers apart, when that entity is not open at the point
_SEPARATORS = (("**", "*"), ("~~", "~"), ("||||", "||"))


def _glue(seq: list[Tok], open_: set[str]) -> str:
    """MarkdownV2 reads '___' greedily (as '__' then '_'): where a reopened or closing _ marker
    meets another, an empty entity keeps them apart (Telegram documents '_**__')."""
    out: list[str] = []
    prev: Tok | None = None
    for tok in seq:
        if _underscore(prev) and _underscore(tok):
            sep = next((s for s, m in _SEPARATORS if m not in open_), None)
            if sep is None:
                raise MarkupError("cannot split safely: no empty entity free to separate _ markers")
            out.append(sep)
        out.append(tok.raw)
        if tok.kind in ("open", "close"):
            open_ ^= {tok.name}
        prev = tok
    return "".join(out)


def split_markup(text: str, mode: str, limit: int) -> list[str]:
    """Parts of at most `limit` UTF-16 units, each valid `mode` markup, in order."""
    toks = _html_tokens(text) if mode == "HTML" else _md_tokens(text)
    n = len(toks)
    cum = [0]
    for t in toks:
        cum.append(cum[-1] + utf16_len(t.raw))
    stacks: list[tuple[Tok, ...]] = [()]
    quote = [False]
    for t in toks:
        s = stacks[-1]
        if t.kind == "open":
            s = (*s, t)
        elif t.kind == "close":
            s = s[:-1]
        stacks.append(s)
        q = quote[-1]
        quote.append(True if t.kind == "quote" else (False if t.char == "\n" else q))
    shown = [(t.kind == "atom") or (t.kind == "text" and not is_blank(t.char)) for t in toks]
    text_after = [False] * (n + 1)
    for i in range(n - 1, -1, -1):
        text_after[i] = shown[i] or text_after[i + 1]
    space = [t.kind == "text" and t.char.isspace() for t in toks]
    # room for separators (4 at most, 4 characters each): a stack holds '_' and '__' once
    # each, so at most one meeting in the reopened markers, one in the closers, one at each end
    slack = 0 if mode == "HTML" else 16

    def opener(p: int) -> list[Tok]:
        return ([Tok(">", "quote")] if quote[p] else []) + list(stacks[p])

    def closers(k: int) -> list[Tok]:
        return [Tok(_closer(t, mode), "close", name=t.name) for t in reversed(stacks[k])]

    def build(p: int, k: int) -> str:
        if mode == "HTML":
            return "".join(t.raw for t in [*opener(p), *toks[p:k], *closers(k)])
        if k - p == 1:
            return _glue([*opener(p), toks[p], *closers(k)], set())
        return glue_head(p) + "".join(t.raw for t in toks[p + 1 : k - 1]) + glue_tail(k)

    def glue_head(p: int) -> str:  # the reopened markers and the first token
        return _glue([*opener(p), toks[p]], set()) if mode != "HTML" else ""

    def glue_tail(k: int) -> str:  # the last token and the closers
        if mode == "HTML":
            return ""
        last = toks[k - 1]
        return _glue([last, *closers(k)], {t.name for t in stacks[k - 1]})

    def size(p: int, k: int) -> int:
        head = sum(utf16_len(t.raw) for t in opener(p))
        tail = sum(utf16_len(t.raw) for t in closers(k))
        return head + cum[k] - cum[p] + tail + slack

    def category(k: int) -> tuple[int, int]:
        """(rank: 0 paragraph .. 4 inside a word, where the next part starts)."""
        if not space[k]:
            return 4, k
        m = k
        while m < n and space[m]:
            m += 1
        gap = "".join(t.char for t in toks[k:m])
        if re.search(r"\n[ \t]*\n", gap):
            return 0, m
        if "\n" in gap:
            return 1, m
        j = k - 1
        while j >= 0 and (toks[j].kind in ("open", "close") or toks[j].char in _CLOSING_QUOTES):
            j -= 1
        return (2 if j >= 0 and toks[j].char in _SENTENCE_END else 3), m

    parts: list[str] = []
    p = 0
    while p < n:
        if size(p, n) <= limit:
            parts.append(build(p, n))
            break
        best: dict[int, tuple[int, int]] = {}  # rank -> (k, next start), the latest
        seen_text = False
        k = p + 1
        head = size(p, p) - slack
        while k < n and head + cum[k] - cum[p] <= limit:
            seen_text = seen_text or shown[k - 1]
            if seen_text and text_after[k] and (k == 0 or not space[k - 1]):
                if size(p, k) <= limit:
                    rank, nxt = category(k)
                    try:  # MarkdownV2: the markers around the cut can be written
                        glue_tail(k), glue_head(nxt) if nxt < n else ""
                    except MarkupError:
                        rank = -1
                    if rank >= 0:
                        best[rank] = (k, nxt)
            k += 1
        if not best:
            t = toks[k - 1]  # the token that did not fit
            raise MarkupError(
                f"cannot split safely: {t.raw[:40]!r}... ({utf16_len(t.raw)} characters) "
                f"does not fit in a part of {limit} with the entities open around it"
                if t.kind == "atom"
                else f"cannot split safely: no cut fits in a part of {limit}"
            )
        third = (limit - head) // 3
        fitting = [r for r in sorted(best) if cum[best[r][0]] - cum[p] >= third]
        rank = fitting[0] if fitting else min(best)
        cut, nxt = best[rank]
        parts.append(build(p, cut))
        p = nxt
    return parts
