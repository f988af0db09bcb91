"""Long HTML / MarkdownV2 messages are split into parts that are each valid on their own
(issue 11, rule 5): property-style over generated messages (fixed seed, bounded), checked by
the fake Bot API's own reading of Telegram's rules (tests/shim/e2e/fakes/markup.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from nikita_shim.markupsplit import MarkupError, split_markup
from nikita_shim.textsplit import split_message, utf16_len

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from fakes.markup import EntityError, parse

LIMIT = 4096
Shown = list[tuple[str, frozenset[str]]]
ALPHABET = "abcdefghij klmnop.,!?-_*()[]{}#+=|~`>&<\"'é😀\\"
HTML_TAGS = {"b": "b", "i": "i", "u": "u", "s": "s", "spoiler": "tg-spoiler"}
MD_MARKS = {"b": "*", "i": "_", "u": "__", "s": "~", "spoiler": "||"}
MD_RESERVED = set("_*[]()~`>#+-=|{}.!\\")


class Gen:
    """A random valid message in one mode, with the text Telegram would show."""

    def __init__(self, rng: random.Random, mode: str) -> None:
        self.rng, self.mode = rng, mode
        self.raw: list[str] = []
        self.shown: Shown = []

    def esc(self, ch: str, ctx: str = "") -> str:
        if self.mode == "HTML":
            if ch in "&<>":
                return (
                    {"&": "&amp;", "<": "&lt;", ">": "&gt;"}[ch]
                    if self.rng.random() < 0.8
                    else f"&#{ord(ch)};"
                )
            return ch
        if ctx == "code":
            return "\\" + ch if ch in "`\\" else ch
        if ctx == "url":
            return "\\" + ch if ch in ")\\" else ch
        return "\\" + ch if ch in MD_RESERVED else ch

    def text(self, styles: frozenset[str], n: int, ctx: str = "") -> None:
        for _ in range(n):
            ch = self.rng.choice(ALPHABET)
            self.raw.append(self.esc(ch, ctx))
            self.shown.append((ch, styles))

    def word(self, styles: frozenset[str]) -> None:
        self.text(styles, self.rng.randint(1, 9))
        self.raw.append(" ")
        self.shown.append((" ", styles))

    def atom(self, styles: frozenset[str], size: int) -> None:
        kind = self.rng.choice(["code", "pre", "a"])
        html = self.mode == "HTML"
        if kind == "a":
            url = "https://example.com/p?q=" + str(self.rng.randint(0, 999)) + "(x)"
            style = frozenset({f"a:{url}"})
            if html:
                self.raw.append(f'<a href="{url}">')
            else:
                self.raw.append("[")
            self.text(styles | style, self.rng.randint(1, 20))
            if html:
                self.raw.append("</a>")
            else:
                self.raw.append("](" + "".join(self.esc(c, "url") for c in url) + ")")
            return
        self.raw.append(f"<{kind}>" if html else ("```\n" if kind == "pre" else "`"))
        self.text(styles | {kind}, size, "code")
        self.raw.append(f"</{kind}>" if html else ("```" if kind == "pre" else "`"))

    def span(self, styles: frozenset[str], depth: int, budget: int) -> None:
        free = [s for s in HTML_TAGS if s not in styles]
        style = self.rng.choice(free)
        inner = styles | {style}
        self.raw.append(f"<{HTML_TAGS[style]}>" if self.mode == "HTML" else MD_MARKS[style])
        self.word(inner)
        while budget > 0:
            r = self.rng.random()
            if r < 0.15 and depth < 3 and len(free) > 1:
                self.span(inner, depth + 1, budget // 3)
                budget //= 2
            elif r < 0.2:
                self.atom(inner, self.rng.randint(1, 60))
            elif r < 0.22 and "quote" not in styles:  # a MarkdownV2 quote is one line
                self.raw.append("\n")
                self.shown.append(("\n", inner))
            self.word(inner)
            budget -= 10
        self.text(inner, 1)
        self.raw.append(f"</{HTML_TAGS[style]}>" if self.mode == "HTML" else MD_MARKS[style])

    def paragraph(self, budget: int) -> None:
        quote = self.rng.random() < 0.15
        base = frozenset({"quote"}) if quote else frozenset()
        if quote and self.mode == "HTML":
            self.raw.append("<blockquote>")
        lines = self.rng.randint(1, 3) if quote and self.mode != "HTML" else 1
        if quote and self.mode != "HTML" and self.raw and not self.raw[-1].endswith("\n"):
            self.raw.append("\n")  # '>' starts a quote only at the start of a line
        for line in range(lines):
            if quote and self.mode != "HTML":
                self.raw.append("\n>" if line else ">")
                if line:
                    self.shown.append(("\n", frozenset()))
            for _ in range(self.rng.randint(1, 4)):
                if self.rng.random() < 0.5:
                    self.span(base, 0, self.rng.randint(10, budget))
                else:
                    self.word(base)
                self.raw.append(". ")
                self.shown += [(".", base), (" ", base)]
                self.raw[-1] = self.esc(".") + " "
        if quote and self.mode == "HTML":
            self.raw.append("</blockquote>")
        ends = ["\n\n", "\n"] if quote and self.mode != "HTML" else ["\n\n", "\n", " "]
        self.raw.append(self.rng.choice(ends))
        self.shown.append(("\n", frozenset()))

    def message(self, size: int) -> tuple[str, Shown]:
        while sum(map(len, self.raw)) < size:
            self.paragraph(self.rng.choice([50, 400, 3000]))
        self.text(frozenset(), 3)
        return "".join(self.raw), self.shown


def visible(shown: Shown) -> Shown:
    return [(c, s) for c, s in shown if not c.isspace()]


@pytest.mark.parametrize("mode", ["HTML", "MarkdownV2"])
def test_generated_messages_split_into_valid_parts(mode: str) -> None:
    rng = random.Random(11)
    checked = 0
    for case in range(25):
        text, expected = Gen(rng, mode).message(rng.randint(4200, 20000))
        assert visible(parse(text, mode)) == visible(expected), case  # the generator is right
        parts = split_message(text, mode, LIMIT)
        assert len(parts) >= 2
        shown: Shown = []
        for part in parts:
            assert utf16_len(part) <= LIMIT
            shown += parse(part, mode)  # raises on an invalid part
            assert "".join(c for c, _ in parse(part, mode)).strip()
        assert visible(shown) == visible(expected), case  # every character, styled, in order
        checked += 1
    assert checked == 25


@pytest.mark.parametrize("mode", ["HTML", "MarkdownV2"])
def test_small_limits_cut_everywhere(mode: str) -> None:
    rng = random.Random(7)
    for case in range(150):
        text, expected = Gen(rng, mode).message(rng.randint(300, 1500))
        try:
            parts = split_markup(text, mode, 200)
        except MarkupError as exc:
            assert "cannot split safely" in str(exc), exc  # an atom too long for 200
            continue
        shown: Shown = []
        for part in parts:
            assert utf16_len(part) <= 200, part
            try:
                shown += parse(part, mode)
            except EntityError as exc:
                raise AssertionError(f"case {case}: {exc}: {part!r}") from None
        assert visible(shown) == visible(expected), case


@pytest.mark.parametrize(
    ("mode", "text", "reason"),
    [
        ("HTML", "<pre>" + "x" * 5000 + "</pre>", "cannot split safely"),
        ("HTML", "<b>" + "y " * 100 + '<a href="u">' + "z" * 4100 + "</a></b>", "cannot split"),
        ("MarkdownV2", "`" + "c" * 5000 + "`", "cannot split safely"),
        ("MarkdownV2", "[" + "l" * 4500 + "](https://x)", "cannot split safely"),
        ("HTML", "<b>" + "w " * 3000, "never closed"),
        ("HTML", "a & b " * 1000, "bare '&'"),
        ("HTML", "<x>" + "w " * 3000 + "</x>", "unsupported tag"),
        ("MarkdownV2", "w. " * 2000, "must be escaped"),
        ("MarkdownV2", "*" + "w " * 3000, "never closed"),
    ],
)
def test_unsplittable_or_invalid_is_refused(mode: str, text: str, reason: str) -> None:
    with pytest.raises(MarkupError, match=reason):
        split_message(text, mode, LIMIT)


def test_entities_and_escapes_are_never_cut() -> None:
    html = "&amp;" * 2000  # 10,000 characters, no space: cut between entities
    parts = split_message(html, "HTML", LIMIT)
    assert all(p.startswith("&amp;") and p.endswith("&amp;") for p in parts)
    assert "".join(parts) == html
    md = "\\." * 3000
    parts = split_message(md, "MarkdownV2", LIMIT)
    assert all(p.startswith("\\.") and not p.endswith("\\") for p in parts)
    assert "".join(parts) == md


def test_tags_are_closed_and_reopened_with_their_attributes() -> None:
    text = (
        '<blockquote expandable><b>bold <span class="tg-spoiler">'
        + "w " * 3000
        + "</span></b></blockquote>"
    )
    first, second = split_message(text, "HTML", LIMIT)
    assert first.startswith('<blockquote expandable><b>bold <span class="tg-spoiler">')
    assert first.endswith("</span></b></blockquote>")
    assert second.startswith('<blockquote expandable><b><span class="tg-spoiler">')
    parse(first, "HTML"), parse(second, "HTML")


def test_markdown_underscores_reopened_apart() -> None:
    text = "_it __under " + "w " * 3000 + "x__ y_"
    parts = split_message(text, "MarkdownV2", LIMIT)
    assert parts[1].startswith("_**__"), parts[1][:10]  # not '___' (read as __ then _)
    for part in parts:
        parse(part, "MarkdownV2")


def test_plain_text_and_short_formatted_text_unchanged() -> None:
    assert split_message("<b>short</b>", "HTML") == ["<b>short</b>"]
    assert split_message("a & b", None) == ["a & b"]  # plain text is not markup
