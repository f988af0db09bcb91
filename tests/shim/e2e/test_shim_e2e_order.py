"""End to end, per-user order (issue 9, item 4): the real shim against the fake Bot API.

Each chat must receive its messages in the order the app scheduled them (scheduled_at, then
creation order), also when its first message is rate limited (429 retry_after) or fails with
a 502 and is retried with backoff, and when several replies share one scheduled_at (queued in
one transaction at now()). Only 127.0.0.1; loops are bounded; nothing asserts on time.

Retry backoff is minutes long (2^(attempt-1) min): the 502 test lets the backoff pass by moving
the due time of the waiting retries to now, as the pgTAP tests move time, never by sleeping.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fakes import telegram
from fakes.base import Reply
from fakes.shim import make_user, running_shim, shim_env, wait_for

CHATS = 20
PER_CHAT = 5
# fast tests: no client-side rate limiting in the way of the order under test
FAST = {"telegram_rate": 1000, "telegram_chat_rate": 1000}


class BadGatewayTelegram(telegram.FakeTelegram):
    """The fake Bot API with one more scripted code, "502" (Bad Gateway), per chat."""

    def _send_message(self, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return super()._send_message(params, headers)
        with self.lock:
            queue = self._scripts[chat_id]
            bad_gateway = bool(queue) and queue[0] == "502"
            if bad_gateway:
                queue.popleft()
                self.rejected.append({"chat_id": chat_id, "text": params.get("text")})
        if bad_gateway:
            body = {"ok": False, "error_code": 502, "description": "Bad Gateway"}
            return Reply(502, body)
        return super()._send_message(params, headers)


@pytest.fixture
def tg502():
    with BadGatewayTelegram() as server:
        yield server


async def queue_numbered(conn, chats: list[int], per_chat: int, same_time: bool = False):
    """Messages "1".."per_chat" for each chat, in that order. Distinct times a millisecond
    apart, or (same_time) all at the transaction's now(), queued in one transaction."""
    users = [await make_user(conn, telegram_id=chat) for chat in chats]
    async with conn.transaction():
        for user in users:
            for n in range(1, per_chat + 1):
                at = "now()" if same_time else "now() - interval '1 minute' + %s * interval '1 ms'"
                args: tuple[Any, ...] = (user, str(n)) if same_time else (user, str(n), n)
                await conn.execute(
                    "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery',"
                    f" jsonb_build_object('text', %s::text), {at})",
                    args,
                )


def all_received(tg: telegram.FakeTelegram, chats: list[int], per_chat: int):
    return lambda: all(len(tg.texts(c)) >= per_chat for c in chats)


def out_of_order(tg: telegram.FakeTelegram, chats: list[int], per_chat: int) -> dict[int, list]:
    want = [str(n) for n in range(1, per_chat + 1)]
    return {c: tg.texts(c) for c in chats if tg.texts(c) != want}


async def test_429_on_each_chats_first_message_keeps_every_chat_in_order(queue_db, conn, tg):
    chats = [610000 + i for i in range(CHATS)]
    for chat in chats:
        tg.script(chat, "429:2")
    await queue_numbered(conn, chats, PER_CHAT)
    async with running_shim(shim_env(queue_db, tg, **FAST)):
        await wait_for(all_received(tg, chats, PER_CHAT), within=90, what="every message")
    assert out_of_order(tg, chats, PER_CHAT) == {}
    rejected = [m for m in tg.rejected if m.get("code", "").startswith("429")]
    assert sorted(m["chat_id"] for m in rejected) == chats, "each chat's first send got a 429"
    assert all(m["text"] == "1" for m in rejected)


async def test_a_502_storm_keeps_every_chat_in_order(queue_db, conn, tg502):
    chats = [620000 + i for i in range(10)]
    per_chat = 4
    for chat in chats:
        tg502.script(chat, "502", "502")  # each chat's first message fails twice
    await queue_numbered(conn, chats, per_chat)

    async def backoff_passes() -> bool:
        # The retries' backoff (minutes) passes: due now. Their order is what the app asked.
        await conn.execute(
            "UPDATE nikita.scheduled_events SET scheduled_at = now()"
            " WHERE status = 'pending' AND attempts > 0 AND scheduled_at > now()"
        )
        return all_received(tg502, chats, per_chat)()

    async with running_shim(shim_env(queue_db, tg502, **FAST)):
        await wait_for(backoff_passes, within=90, step=0.2, what="every message")
    assert out_of_order(tg502, chats, per_chat) == {}
    assert len(tg502.rejected) == 2 * len(chats), "two 502s per chat"
    cur = await conn.execute(
        "SELECT array_agg(DISTINCT attempts) AS a FROM nikita.scheduled_events"
        " WHERE content ->> 'text' = '1'"
    )
    row = await cur.fetchone()
    assert row is not None and row["a"] == [3], "each first message went out at attempt 3"


async def test_replies_queued_in_one_transaction_go_out_in_creation_order(queue_db, conn, tg):
    chats = [630000 + i for i in range(10)]
    await queue_numbered(conn, chats, PER_CHAT, same_time=True)
    cur = await conn.execute(
        "SELECT count(DISTINCT scheduled_at)::int AS n FROM nikita.scheduled_events"
    )
    row = await cur.fetchone()
    assert row is not None and row["n"] == 1, "all share one scheduled_at"
    async with running_shim(shim_env(queue_db, tg, **FAST)):
        await wait_for(all_received(tg, chats, PER_CHAT), within=60, what="every message")
    assert out_of_order(tg, chats, PER_CHAT) == {}


async def test_the_fake_answers_502_when_scripted(tg502):
    """The 502 the storm test relies on reaches the client as an HTTP 502."""
    tg502.script(1, "502")
    url = f"{tg502.base_url}{tg502.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        first = await client.post(url, data={"chat_id": "1", "text": "x"})
        second = await client.post(url, data={"chat_id": "1", "text": "y"})
    assert (first.status_code, second.status_code) == (502, 200)
    assert tg502.texts(1) == ["y"]
