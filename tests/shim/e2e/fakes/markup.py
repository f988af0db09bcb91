"""Telegram's formatting rules, as documented (core.telegram.org/bots/api#formatting-options),
for the fake Bot API: a text that breaks them is refused with Telegram's 400
"can't parse entities" text. Written independently of nikita_shim.markupsplit (HTML through
html.parser, MarkdownV2 through its own scanner).

`parse(text, mode)` returns the text as shown: a list of (character, styles) pairs, styles a
frozenset such as {"b", "a:https://x"}; it raises EntityError on a rule broken.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED = {
    "b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "ins": "u",
    "s": "s", "strike": "s", "del": "s", "tg-spoiler": "spoiler", "span": "spoiler",
    "a": "a", "code": "code", "pre": "pre", "blockquote": "quote", "tg-emoji": "emoji",
}  # fmt: skip
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
RESERVED = "_*[]()~`>#+-=|{}.!"


class EntityError(ValueError):
    pass


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[tuple[str, str]] = []  # (tag, style)
        self.out: list[tuple[str, frozenset[str]]] = []

    def _styles(self) -> frozenset[str]:
        return frozenset(style for _, style in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            raise EntityError(f'Unsupported start tag "{tag}"')
        values = dict(attrs)
        style = ALLOWED[tag]
        if tag == "span" and values.get("class") != "tg-spoiler":
            raise EntityError('Unsupported start tag "span"')
        if tag == "a":
            style = f"a:{values.get('href')}"
        if any(s in ("code", "pre") for _, s in self.stack) and not (
            tag == "code" and self.stack[-1][1] == "pre"
        ):
            raise EntityError(f'Can\'t parse entities: "{tag}" inside code')
        self.stack.append((tag, style))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise EntityError(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise EntityError(f'Unmatched end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for ch in data:
            if ch in "<>&":
                raise EntityError(f"Unexpected {ch!r}: it must be written as an entity")
            self.out.append((ch, self._styles()))

    def handle_entityref(self, name: str) -> None:
        if name not in NAMED:
            raise EntityError(f'Unsupported HTML entity "&{name};"')
        self.out.append((NAMED[name], self._styles()))

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.out.append((chr(code), self._styles()))

    def unknown_decl(self, data: str) -> None:
        raise EntityError("Unsupported declaration")

    def handle_comment(self, data: str) -> None:
        raise EntityError("Unsupported comment")


def parse_html(text: str) -> list[tuple[str, frozenset[str]]]:
    if re.search(r"&(?!(?:[A-Za-z]+|#\d+|#[xX][0-9A-Fa-f]+);)", text):
        raise EntityError("Unexpected '&': it must be written as &amp;")
    p = _Html()
    p.feed(text)
    p.close()
    if p.rawdata:
        raise EntityError("Unclosed tag at the end of the text")
    if p.stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{p.stack[-1][0]}"')
    return p.out


def _md_until(text: str, i: int, stop: str, what: str) -> tuple[str, int]:
    """Shown characters from i to the unescaped `stop`, and the index after it."""
    shown = []
    while True:
        if i >= len(text):
            raise EntityError(f"Can't find end of {what} entity")
        if text[i] == "\\" and i + 1 < len(text):
            shown.append(text[i + 1])
            i += 2
        elif text.startswith(stop, i):
            return "".join(shown), i + len(stop)
        else:
            shown.append(text[i])
            i += 1


def parse_markdown_v2(text: str) -> list[tuple[str, frozenset[str]]]:
    out: list[tuple[str, frozenset[str]]] = []
    open_: list[str] = []
    quote = False
    i = 0
    at_line_start = True
    markers = (("||", "spoiler"), ("__", "u"), ("*", "b"), ("_", "i"), ("~", "s"))
    while i < len(text):
        ch = text[i]
        styles = frozenset(open_) | ({"quote"} if quote else set())
        if at_line_start and text.startswith("**>", i):
            quote, i, at_line_start = True, i + 3, False
            continue
        if at_line_start and ch == ">":
            quote, i, at_line_start = True, i + 1, False
            continue
        at_line_start = False
        if ch == "\\":
            if i + 1 >= len(text) or not 0 < ord(text[i + 1]) < 127:
                raise EntityError("Character '\\' is reserved and must be escaped")
            out.append((text[i + 1], styles))
            if text[i + 1] == "\n":
                quote, at_line_start = False, True
            i += 2
            continue
        if text.startswith("```", i):
            body, i = _md_until(text, i + 3, "```", "Pre")
            out += [(c, styles | {"pre"}) for c in body.split("\n", 1)[-1]]
            continue
        if ch == "`":
            body, i = _md_until(text, i + 1, "`", "Code")
            out += [(c, styles | {"code"}) for c in body]
            continue
        if ch == "[" or text.startswith("![", i):
            label, i = _md_until(text, i + (2 if ch == "!" else 1), "]", "TextUrl")
            if not text.startswith("(", i):
                raise EntityError("Character '[' is reserved and must be escaped")
            url, i = _md_until(text, i + 1, ")", "TextUrl")
            out += [(c, styles | {f"a:{url}"}) for c in label]
            continue
        if quote and text.startswith("||", i) and "spoiler" not in open_:
            rest = text[i + 2 :]
            if re.match(r"[ \t]*(\n|$)", rest):  # end of an expandable block quotation
                i += 2
                continue
        for marker, style in markers:
            if text.startswith(marker, i):
                if style in open_:
                    if open_[-1] != style:
                        raise EntityError(f"Can't find end of {style} entity")
                    open_.pop()
                else:
                    open_.append(style)
                i += len(marker)
                break
        else:
            if ch in RESERVED:
                raise EntityError(
                    f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
                )
            out.append((ch, styles))
            if ch == "\n":
                quote, at_line_start = False, True
            i += 1
    if open_:
        raise EntityError(f"Can't find end of {open_[-1]} entity")
    return out


def parse(text: str, mode: str) -> list[tuple[str, frozenset[str]]]:
    return parse_html(text) if mode == "HTML" else parse_markdown_v2(text)
