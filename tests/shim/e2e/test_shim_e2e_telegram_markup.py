"""End to end, long formatted messages (issue 11, rule 5): schedule_event -> the shim -> the
fake Bot API, which refuses any part that is not valid HTML / MarkdownV2 as Telegram documents
it (fakes/markup.py) with Telegram's 400 "can't parse entities"."""

from __future__ import annotations

from fakes.markup import parse
from fakes.shim import make_user, running_shim, schedule, shim_env, wait_status

HTML = (
    "<b>Dear player &amp; friend,</b>\n\n"
    + "".join(
        f'<i>Paragraph {n}: <b>bold {n} &lt;tag&gt;</b> and <a href="https://x.test/{n}">a link'
        f"</a> then <code>code &amp; more</code>. " + "words " * 60 + "</i>\n\n"
        for n in range(25)
    )
    + "<blockquote>"
    + "quoted words " * 400
    + "</blockquote> Bye."
)
MD = (
    "*Dear player \\& friend,*\n\n"
    + "".join(
        f"_Paragraph {n}: *bold {n} \\<tag\\>* and [a link](https://x.test/{n}) then "
        f"`code \\` more`\\. " + "words " * 60 + "_\n\n"
        for n in range(25)
    )
    + "~a struck paragraph longer than a message "
    + "w " * 2500
    + "~\n\n"
    + "\n".join(">quoted line " + "w " * 30 for _ in range(30))
    + "\nBye\\."
)


def visible(text: str, mode: str) -> list[tuple[str, frozenset[str]]]:
    return [(c, s) for c, s in parse(text, mode) if not c.isspace()]


async def _deliver(conn, queue_db, tg, chat: int, text: str, mode: str) -> dict:
    user = await make_user(conn, telegram_id=chat)
    async with running_shim(shim_env(queue_db, tg, telegram_chat_rate=200)):
        eid = await schedule(conn, user, "telegram", {"text": text, "parse_mode": mode})
        return await wait_status(conn, eid, ("delivered", "failed"), within=20)


async def test_long_html_is_split_into_valid_parts(queue_db, conn, tg):
    assert len(HTML) > 2 * 4096
    row = await _deliver(conn, queue_db, tg, 5101, HTML, "HTML")
    assert row["status"] == "delivered", row["last_error"]
    parts = tg.texts(5101)
    assert len(parts) >= 3 and not tg.rejected
    assert all(len(p) <= 4096 for p in parts)
    assert row["provider_ref"].count(",") == len(parts) - 1
    shown = [cs for p in parts for cs in visible(p, "HTML")]
    assert shown == visible(HTML, "HTML")  # every character, with its formatting, in order


async def test_long_markdown_v2_is_split_into_valid_parts(queue_db, conn, tg):
    assert len(MD) > 2 * 4096
    row = await _deliver(conn, queue_db, tg, 5102, MD, "MarkdownV2")
    assert row["status"] == "delivered", row["last_error"]
    parts = tg.texts(5102)
    assert len(parts) >= 3 and not tg.rejected
    shown = [cs for p in parts for cs in visible(p, "MarkdownV2")]
    assert shown == visible(MD, "MarkdownV2")


async def test_what_cannot_be_split_safely_fails_before_sending(queue_db, conn, tg):
    text = "<b>Here is the log:</b>\n<pre>" + "line of log\n" * 400 + "</pre>"
    row = await _deliver(conn, queue_db, tg, 5103, text, "HTML")
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "cannot split safely" in row["last_error"], row["last_error"]
    assert tg.attempts(5103) == 0  # nothing sent: no half message


async def test_the_fake_refuses_invalid_markup_like_telegram(queue_db, conn, tg):
    row = await _deliver(conn, queue_db, tg, 5104, "Hey <b>you", "HTML")
    assert row["status"] == "failed"
    assert "can't parse entities" in row["last_error"].lower(), row["last_error"]
    row = await _deliver(conn, queue_db, tg, 5105, "Hey you.", "MarkdownV2")
    assert "can't parse entities" in row["last_error"].lower(), row["last_error"]
