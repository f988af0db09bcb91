"""End to end, secrets: a provider (or a broken connection) that echoes the bot token or the
API key back, in every form a server or a library produces, never gets it into last_error,
the errors history or the shim's log, and the 2,000-character cut (500 for a voice detail)
never leaves a piece of it.

The forms are computed here, independently of nikita_shim.redact: exact, URL-encoded (quote,
quote_plus, lower-case hex, twice), upper and lower case, and a bot token's secret part alone.
"""

from __future__ import annotations

import json
import re
import signal
from typing import Any
from urllib.parse import quote, quote_plus

from fakes import shim
from fakes.base import Reply
from fakes.elevenlabs import FakeElevenLabs
from fakes.shim import make_user, schedule, shim_env, wait_for

# a key with characters that URL-encoding changes (the real ones are sk_ + hex: the test is
# stronger with these)
ODD_KEY = "sk_test_9f8e7d6c5b4a+/:=?&%_tail42"
MARK = "<redacted>"
PREFIX = 10  # a leftover of this many leading characters of a secret counts as a leak


def forms(secret: str) -> dict[str, str]:
    encoded = quote(secret, safe="")
    found = {
        "exact": secret,
        "quote": encoded,
        "quote-lower-hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded),
        "quote-path": quote(secret),
        "quote_plus": quote_plus(secret),
        "upper": secret.upper(),
        "lower": secret.lower(),
        "twice": quote(encoded, safe=""),
    }
    _, colon, part = secret.partition(":")
    if colon and re.fullmatch(r"\d+", secret.partition(":")[0]):  # a bot token
        found |= {"part": part, "part-upper": part.upper(), "part-quoted": quote(part, safe="")}
    return found


def leaks(text: str, secret: str) -> list[str]:
    """The forms of `secret` found in `text` (case-insensitive), and cut leftovers."""
    low = text.lower()
    found = [name for name, form in forms(secret).items() if form.lower() in low]
    _, colon, part = secret.partition(":")
    heads = [secret[:PREFIX]] + ([part[:PREFIX]] if colon and len(part) >= 16 else [])
    found += [f"prefix {h!r}" for h in heads if h.lower() in low]
    return found


def assert_clean(row: dict[str, Any], secret: str, cut: bool = False) -> None:
    error = row["last_error"]
    assert error, row
    assert not leaks(error, secret), (leaks(error, secret), error)
    if cut:  # the secret straddled the cut: the marker is whole or its start ends the text
        assert MARK in error or any(error.endswith(MARK[:k]) for k in range(1, len(MARK))), error[
            -40:
        ]
    else:
        assert MARK in error, error  # the echo did come through
    assert len(row["last_error"]) <= 2000
    assert row["errors"], row
    for entry in row["errors"]:
        assert not leaks(entry["error"], secret), entry
        assert not leaks(json.dumps(entry), secret), entry


def echo_replies(secret: str, code: int, prefix: str) -> list[Reply]:
    return [
        Reply(code, {"ok": False, "error_code": code, "description": f"{prefix} {form} (echo)"})
        for form in forms(secret).values()
    ]


async def test_telegram_echoes_of_the_token_are_redacted_everywhere(queue_db, conn, tg, procs):
    token = tg.token
    replies: list[tuple[Reply, str]] = []
    # 400 (permanent) echoing every form; 500 (retried); a broken response (a network error
    # whose text quotes the status line); and the cut: the token straddles character 2,000
    replies += [(r, "failed") for r in echo_replies(token, 400, "Bad Request: bad token")]
    replies += [(r, "retry") for r in echo_replies(token, 500, "Internal Server Error: for")]
    replies.append((Reply(0, None, raw=b"HTTP/1.1 2x0 " + token.encode() + b"\r\n\r\n"), "retry"))
    # last_error is "400 Bad Request: X" + ...: the token starts at character 18 + lead
    for lead in (1940, 1960, 1975, 1981):
        desc = "Bad Request: " + "x" * lead + " " + token + " " + quote(token, safe="")
        body = {"ok": False, "error_code": 400, "description": desc}
        replies.append((Reply(400, body), "cut"))
    chats = [7000 + i for i in range(len(replies))]
    for chat, (reply, _) in zip(chats, replies, strict=True):
        tg.script(chat, reply)
    users = [await make_user(conn, telegram_id=c) for c in chats]

    p = procs(shim_env(queue_db, tg, telegram_chat_rate=100, telegram_rate=1000))
    await p.wait_ready()
    ids = [await schedule(conn, u, "telegram", {"text": "hello"}) for u in users]

    async def settled() -> bool:
        rows = await shim.events(conn, ids)
        return all(r["status"] == "failed" or (r["attempts"] >= 1 and r["errors"]) for r in rows)

    await wait_for(settled, within=30, what="every echo to be recorded")
    p.signal(signal.SIGTERM)
    assert await p.wait_exit(30) == 0

    rows = {r["id"]: r for r in await shim.events(conn, ids)}
    for eid, (_, expected) in zip(ids, replies, strict=True):
        row = rows[eid]
        assert row["status"] == ("pending" if expected == "retry" else "failed"), row
        assert_clean(row, token, cut=expected == "cut")
    log = p.log()
    assert not leaks(log, token), leaks(log, token)
    # every echo reached the log, redacted (a cut may leave only the start of the marker)
    assert log.count(MARK) >= sum(1 for _, e in replies if e != "cut")


async def test_voice_echoes_of_the_api_key_are_redacted_everywhere(queue_db, conn, procs):
    with FakeElevenLabs(api_key=ODD_KEY) as el:
        replies: list[Reply] = []
        cut: list[bool] = []
        for form in forms(ODD_KEY).values():
            # 422 (permanent) and 500 (outcome unknown) with the key in the detail
            replies.append(Reply(422, {"detail": {"message": f"key {form} not allowed"}}))
            replies.append(Reply(500, {"detail": f"upstream said {form}"}))
        # a broken response: httpx's error quotes the status line
        replies.append(Reply(0, None, raw=b"HTTP/1.1 2x0 " + ODD_KEY.encode() + b"\r\n\r\n"))
        # the voice detail is cut at 500 characters: the key straddles the cut
        cut += [False] * len(replies)
        for lead in (489, 492, 495, 498):  # the key starts at lead + 1
            replies.append(Reply(422, {"detail": "y" * lead + " " + ODD_KEY}))
            cut.append(True)
        phones = [f"+1555030{i:04d}" for i in range(len(replies))]
        for phone, reply in zip(phones, replies, strict=True):
            el.script(phone, reply)
        users = [await make_user(conn, phone=ph) for ph in phones]

        p = procs(shim_env(queue_db, el=el, voice_concurrency=8))
        await p.wait_ready()
        ids = [await schedule(conn, u, "voice", {}, event_type="call_reminder") for u in users]

        async def settled() -> bool:
            rows = await shim.events(conn, ids)
            return all(r["status"] == "failed" for r in rows)

        await wait_for(settled, within=30, what="every call to fail")
        p.signal(signal.SIGTERM)
        assert await p.wait_exit(30) == 0

    rows = {r["id"]: r for r in await shim.events(conn, ids)}
    for eid, was_cut in zip(ids, cut, strict=True):
        assert_clean(rows[eid], ODD_KEY, cut=was_cut)
    log = p.log()
    assert not leaks(log, ODD_KEY), leaks(log, ODD_KEY)
    assert log.count(MARK) >= cut.count(False)
