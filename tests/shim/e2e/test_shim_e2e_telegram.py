"""End to end, Telegram: schedule_event -> the shim -> the fake Bot API -> the row's state."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from fakes import shim
from fakes.shim import make_user, running_shim, schedule, shim_env, wait_for, wait_status


async def test_delivered_with_the_right_request(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=4242)
    markup = {"inline_keyboard": [[{"text": "Call me", "callback_data": "call"}]]}
    async with running_shim(shim_env(queue_db, tg)):
        eid = await schedule(
            conn,
            user,
            "telegram",
            {
                "text": "Hey <b>you</b>",
                "parse_mode": "HTML",
                "reply_markup": markup,
                "disable_notification": True,
            },
        )
        row = await wait_status(conn, eid, "delivered")
    [msg] = tg.delivered()
    assert msg["chat_id"] == 4242  # defaulted from the user's telegram_id
    assert msg["text"] == "Hey <b>you</b>"
    assert msg["parse_mode"] == "HTML"
    assert msg["reply_markup"] == markup
    assert msg["disable_notification"] is True
    assert row["provider_ref"] == str(msg["message_id"])
    assert row["attempts"] == 1
    assert row["delivered_at"] is not None


async def test_future_event_waits_for_its_time(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=77)
    async with running_shim(shim_env(queue_db, tg, poll_interval=30)):
        at = datetime.now(UTC) + timedelta(seconds=1.5)
        eid = await schedule(conn, user, "telegram", {"text": "later"}, at=at)
        await asyncio.sleep(0.8)
        assert tg.delivered() == []
        await wait_status(conn, eid, "delivered", within=5)
    [msg] = tg.delivered()
    # woken by its own timer (the fallback poll is 30 s): on time, within a few ms
    late = msg["t"] - at.timestamp()
    assert 0 <= late < 0.5, late


async def test_blocked_user_is_permanent(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=403403)
    tg.always(403403, "403")
    async with running_shim(shim_env(queue_db, tg)):
        eid = await schedule(conn, user, "telegram", {"text": "hello?"})
        row = await wait_status(conn, eid, "failed")
    assert row["attempts"] == 1
    assert "403" in row["last_error"] and "blocked" in row["last_error"].lower()
    assert tg.attempts(403403) == 1


async def test_chat_not_found_is_permanent(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=400400)
    tg.always(400400, "400")
    async with running_shim(shim_env(queue_db, tg)):
        eid = await schedule(conn, user, "telegram", {"text": "hello?"})
        row = await wait_status(conn, eid, "failed")
    assert "chat not found" in row["last_error"].lower()
    assert row["attempts"] == 1


async def test_server_error_is_retried_with_backoff(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=500500)
    tg.always(500500, "500")
    async with running_shim(shim_env(queue_db, tg)):
        eid = await schedule(conn, user, "telegram", {"text": "hello?"})
        await wait_for(lambda: tg.attempts(500500) >= 1, what="a send")

        async def back_to_pending() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["attempts"] == 1

        await wait_for(back_to_pending, what="the retry to be scheduled")
    row = await shim.event(conn, eid)
    assert "Internal Server Error" in row["last_error"]
    # backoff of the first retry: 1 minute +-10 %
    assert row["scheduled_at"] > datetime.now(UTC) + timedelta(seconds=45)


async def test_429_defers_by_retry_after_without_using_an_attempt(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=429429)
    tg.script(429429, "429:2")
    async with running_shim(shim_env(queue_db, tg)):
        t0 = datetime.now(UTC)
        eid = await schedule(conn, user, "telegram", {"text": "flood"})
        row = await wait_status(conn, eid, "delivered", within=10)
    assert row["attempts"] == 1  # the deferral consumed no attempt
    assert tg.attempts(429429) == 2
    [msg] = tg.delivered()
    assert msg["t"] - t0.timestamp() >= 1.9  # waited retry_after


async def test_slow_reply_times_out_and_is_retried(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=5151)
    tg.script(5151, "slow:3")
    async with running_shim(shim_env(queue_db, tg, telegram_timeout=1)):
        eid = await schedule(conn, user, "telegram", {"text": "slow"})

        async def retried() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["attempts"] == 1

        await wait_for(retried, within=10, what="the timeout to be recorded as retryable")
    row = await shim.event(conn, eid)
    assert "timed out" in row["last_error"].lower()


async def test_bad_token_stops_telegram_and_keeps_events(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=401401)
    env = shim_env(queue_db, tg)
    env["TELEGRAM_BOT_TOKEN"] = "999999:wrong-token-wrong-token-wrong"
    async with running_shim(env) as s:
        eid = await schedule(conn, user, "telegram", {"text": "hello"})

        async def deferred() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["scheduled_at"] > datetime.now(UTC)

        await wait_for(deferred, what="the event to be deferred")
        assert s.delivery._disabled.get("telegram")
    row = await shim.event(conn, eid)
    assert row["attempts"] == 0  # not the event's fault
    assert tg.delivered() == []
    assert row["scheduled_at"] > datetime.now(UTC) + timedelta(seconds=200)


async def test_long_text_is_split_and_sent_in_order(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=9000)
    paragraphs = [f"Paragraph {i}. " + ("word " * 300).strip() + "." for i in range(12)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 3 * 4096
    async with running_shim(shim_env(queue_db, tg, telegram_chat_rate=50)):
        eid = await schedule(conn, user, "telegram", {"text": text})
        row = await wait_status(conn, eid, "delivered")
    sent = tg.texts(9000)
    assert len(sent) >= 4
    assert all(len(s) <= 4096 for s in sent)
    assert all(s.startswith("Paragraph ") for s in sent)  # cut at paragraph boundaries
    assert "\n\n".join(sent) == text  # in order, nothing lost
    ids = [m["message_id"] for m in tg.delivered()]
    assert row["provider_ref"] == ",".join(map(str, ids))


async def test_per_chat_and_global_rate_limits_hold(queue_db, conn, tg):
    users = [await make_user(conn, telegram_id=7000 + i) for i in range(4)]
    async with running_shim(shim_env(queue_db, tg, telegram_rate=10, telegram_chat_rate=2)):
        for u in users:
            for n in range(3):
                await schedule(conn, u, "telegram", {"text": f"m{n}"})
        await wait_for(lambda: len(tg.delivered()) == 12, within=20, what="12 messages")
    times = sorted(m["t"] for m in tg.delivered())
    # global 10/s: 12 sends span at least 11 intervals of 0.1 s
    assert times[-1] - times[0] >= 11 * 0.1 - 0.05
    for i in range(4):
        chat = sorted(m["t"] for m in tg.delivered() if m["chat_id"] == 7000 + i)
        gaps = [b - a for a, b in itertools.pairwise(chat)]
        assert all(g >= 0.5 - 0.03 for g in gaps), gaps  # per chat 2/s
