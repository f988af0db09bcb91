"""End to end, the delivery loop's robustness: no event stops the pump, and a crashed core
task makes the process exit non-zero (so that systemd restarts it) instead of leaving a
live process that delivers nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fakes import shim
from fakes.base import Reply
from fakes.shim import make_user, running_shim, schedule, shim_env, wait_for, wait_status

from nikita_shim.events import ClaimedEvent, Outcome
from nikita_shim.transports import DeliveryContext
from nikita_shim.transports.noop import NoopTransport

DEEP = 3000  # Python's json decoder gives up near 1,000 levels (RecursionError)


async def state(conn: psycopg.AsyncConnection[Any], event_id: UUID) -> dict[str, Any]:
    """The row without its content (which this process could not decode either)."""
    cur = await conn.execute(
        "SELECT status, attempts, last_error, errors FROM nikita.scheduled_events WHERE id = %s",
        (event_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def insert_directly(
    conn: psycopg.AsyncConnection[Any],
    user: UUID,
    platform: str,
    content_json: str,
    event_type: str = "message_delivery",
) -> UUID:
    """Write a row as the superuser, bypassing schedule_event (whose bounds refuse it)."""
    cur = await conn.execute(
        "INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content)"
        " VALUES (%s, %s, %s, %s::jsonb) RETURNING id",
        (user, platform, event_type, content_json),
    )
    row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def test_an_undecodable_event_fails_alone_and_the_rest_is_delivered(
    queue_db, conn, tg, el, caplog
):
    caplog.set_level(logging.INFO, logger="nikita_shim")
    # The table's own content bound (a CHECK, when migrated) would refuse the row: the shim
    # must not depend on it (rows written before it, or by a bug elsewhere).
    await conn.execute(
        "ALTER TABLE nikita.scheduled_events"
        " DROP CONSTRAINT IF EXISTS scheduled_events_content_bounded"
    )
    good_chats = [8001, 8002, 8003]
    good_users = [await make_user(conn, telegram_id=c) for c in good_chats]
    bad_tg_user = await make_user(conn, telegram_id=8100)
    bad_voice_user = await make_user(conn, phone="+15550108100")
    voice_user = await make_user(conn, phone="+15550108101")
    # one transaction: the bad rows and the good ones are due together, claimed in one batch
    async with conn.transaction():
        bad_tg = await insert_directly(
            conn,
            bad_tg_user,
            "telegram",
            '{"chat_id": 8100, "text": "hi", "reply_markup": {"inline_keyboard": '
            + nested(DEEP)
            + "}}",
        )
        bad_voice = await insert_directly(
            conn,
            bad_voice_user,
            "voice",
            '{"to_number": "+15550108100", "dynamic_variables": {"x": ' + nested(DEEP) + "}}",
            "call_reminder",
        )
        good = [await schedule(conn, u, "telegram", {"text": f"good {u}"}) for u in good_users]
        good.append(await schedule(conn, voice_user, "voice", {}, event_type="call_reminder"))

    env = shim_env(queue_db, tg, el, telegram_chat_rate=100, telegram_rate=1000)
    async with running_shim(env) as s:
        for eid in good:
            await wait_status(conn, eid, "delivered")
        for eid in (bad_tg, bad_voice):

            async def failed(eid: UUID = eid) -> bool:
                return (await state(conn, eid))["status"] == "failed"

            await wait_for(failed, what="the bad event to fail")
            row = await state(conn, eid)
            assert row["last_error"] == "undecodable event: content nests too deeply to decode"
            assert row["errors"][-1]["retryable"] is False
        # the loop goes on: a later event is delivered by the same shim
        later = await schedule(conn, good_users[0], "telegram", {"text": "later"})
        await wait_status(conn, later, "delivered")
        assert not any(t.done() for t in s.core_tasks())
    assert el.calls_to("+15550108100") == []  # the bad call was never attempted
    assert [m["chat_id"] for m in tg.delivered()].count(8100) == 0
    failed_lines = [
        r
        for r in caplog.records
        if r.getMessage() == "delivery" and r.fields.get("event_id") == str(bad_tg)
    ]
    assert failed_lines and failed_lines[0].fields["outcome"] == "failed"


async def test_an_outcome_the_database_refuses_does_not_stop_the_others(queue_db, conn, tg):
    # A constraint that refuses one outcome (as a length limit or any CHECK could): before,
    # the whole batch was retried forever and nothing was recorded any more.
    await conn.execute(
        "ALTER TABLE nikita.scheduled_events ADD CONSTRAINT test_refuses_poison"
        " CHECK (last_error IS NULL OR last_error NOT ILIKE '%poison%')"
    )
    tg.script(
        8200, Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: poison"})
    )
    tg.script(8201, "403")
    tg.script(8204, "429:120")
    tg.script(8205, "500")
    chats = [8200, 8201, 8202, 8203, 8204, 8205]
    users = [await make_user(conn, telegram_id=c) for c in chats]
    env = shim_env(queue_db, tg, telegram_chat_rate=100, telegram_rate=1000)
    async with running_shim(env):
        ids = [await schedule(conn, u, "telegram", {"text": "x"}) for u in users]

        async def settled() -> bool:
            rows = await shim.events(conn, ids)
            # every chat was called once (the 429 is deferred: its attempt is given back)
            called = all(tg.attempts(c) >= 1 for c in chats)
            return called and all(r["status"] != "sending" for r in rows)

        await wait_for(settled, what="every outcome to be recorded")
        rows = {r["id"]: r for r in await shim.events(conn, ids)}
        poison, blocked, ok1, ok2, limited, error = (rows[i] for i in ids)
        assert poison["status"] == "failed"
        assert poison["last_error"] == "the outcome could not be recorded (refused by the database)"
        assert blocked["status"] == "failed" and blocked["last_error"].startswith("403")
        assert ok1["status"] == ok2["status"] == "delivered"
        assert limited["status"] == "pending" and limited["attempts"] == 0
        assert error["status"] == "pending" and error["attempts"] == 1
        # and later events still go out
        later = await schedule(conn, users[2], "telegram", {"text": "later"})
        await wait_status(conn, later, "delivered")


class ExplodingTransport(NoopTransport):
    """A transport with a bug for some contents (as a library raising TypeError, KeyError or
    RecursionError on an odd value would): the loop must fail that event, not retry it."""

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        kind = str(event.content.get("text", "")).removeprefix("explode:")
        if kind in ("key", "type", "value"):
            raise {"key": KeyError, "type": TypeError, "value": ValueError}[kind]("boom")
        return await super().deliver(event, ctx)


async def test_a_transport_exception_fails_the_event_permanently(queue_db, conn):
    users = [await make_user(conn, telegram_id=8400 + i) for i in range(4)]
    env = shim_env(queue_db, telegram_transport="noop", voice_transport="noop")
    transports = {"telegram": ExplodingTransport("telegram"), "voice": NoopTransport("voice")}
    async with running_shim(env, transports=transports) as s:
        bad = [
            await schedule(conn, u, "telegram", {"text": f"explode:{kind}"})
            for u, kind in zip(users, ("key", "type", "value"), strict=False)
        ]
        good = await schedule(conn, users[3], "telegram", {"text": "fine"})
        await wait_status(conn, good, "delivered")
        for eid, name in zip(bad, ("KeyError", "TypeError", "ValueError"), strict=True):
            row = await wait_status(conn, eid, ("failed", "pending"))
            assert row["status"] == "failed", row  # permanent: not retried with backoff
            assert row["attempts"] == 1
            assert row["last_error"].startswith(f"cannot deliver: {name}")
        assert not any(t.done() for t in s.core_tasks())


@pytest.fixture
def notify_socket():
    sock_dir = tempfile.mkdtemp(prefix="nikita-notify-")
    path = os.path.join(sock_dir, "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.extend(server.recv(4096).decode().splitlines())
            except BlockingIOError:
                return received

    try:
        yield path, drain
    finally:
        server.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.mark.parametrize("task", ["pump", "listener", "sweeper"])
async def test_a_crashed_core_task_exits_non_zero_with_its_traceback(
    task, queue_db, conn, tg, procs, notify_socket
):
    path, drain = notify_socket
    user = await make_user(conn, telegram_id=8300)
    # a delivery in progress at the crash: the shutdown waits for it (a second, ten watchdog
    # periods), so a watchdog still fed would be seen
    tg.always(8300, "slow:1")
    env = shim_env(queue_db, tg, test_fault=task)
    env |= {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    p = procs(env)
    await p.wait_ready()
    # something to claim (pump) and a notification (listener); the sweeper runs every second
    eid = await schedule(conn, user, "telegram", {"text": "hi"})

    def exited() -> bool:
        drain()  # keep the datagram queue empty (it holds only a few messages)
        return p.proc.poll() is not None

    await wait_for(exited, within=30, what="the shim to exit")
    code = await p.wait_exit(1)
    assert code == 1, p.log()
    log = p.log()
    assert 'msg="core task crashed: exiting so that the service is restarted"' in log
    assert f"task={task}" in log
    assert "Traceback (most recent call last)" in log
    assert f"injected fault in the {task}" in log
    messages = drain()
    crash = next(i for i, m in enumerate(messages) if m.startswith("STATUS=crashed"))
    assert task in messages[crash]
    assert "WATCHDOG=1" not in messages[crash:]  # the watchdog is no longer fed
    assert "STOPPING=1" in messages[crash:]
    # what was claimed was delivered or released on the way out, not left to a lease
    row = await shim.event(conn, eid)
    assert row["status"] in ("pending", "delivered"), row
    assert row["scheduled_at"] < datetime.now(UTC) + timedelta(seconds=5)
