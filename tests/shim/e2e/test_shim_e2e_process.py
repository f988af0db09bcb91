"""The shim as a real process (`nikita-shim run`): SIGTERM, kill -9 and restart, two shims at
once, systemd notifications, a database restarted under it."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from fakes import shim
from fakes.shim import make_user, schedule, shim_env, status_counts, wait_for

ROOT = Path(__file__).resolve().parents[3]
DELIVERED = re.compile(r"msg=delivery event_id=(\S+) .*outcome=delivered")


def delivered_ids(log: str) -> set[str]:
    return set(DELIVERED.findall(log))


async def test_sigterm_finishes_in_flight_and_releases_the_rest(queue_db, conn, tg, procs):
    users = [await make_user(conn, telegram_id=1000 + i) for i in range(30)]
    for i in range(30):
        tg.always(1000 + i, "slow:1.5")
    # 4 deliveries at a time, 1.5 s each: at SIGTERM most events are claimed but not started
    p = procs(shim_env(queue_db, tg, concurrency=4, batch_size=50, shutdown_timeout=10))
    await p.wait_ready()
    for u in users:
        await schedule(conn, u, "telegram", {"text": "hi"})
    await wait_for(lambda: len(tg.delivered()) >= 4, what="the first sends")
    p.signal(signal.SIGTERM)
    assert await p.wait_exit(20) == 0
    counts = await status_counts(conn)
    assert counts.get("sending", 0) == 0, counts
    assert counts.get("delivered", 0) >= 4  # in-flight deliveries were finished
    assert counts.get("pending", 0) >= 10  # the rest was released...
    cur = await conn.execute(
        "SELECT count(*) AS n FROM nikita.scheduled_events WHERE status = 'pending'"
        " AND attempts > 0"
    )
    assert (await cur.fetchone())["n"] == 0  # ...without consuming an attempt
    assert "msg=stopped" in p.log()


async def test_kill_9_then_restart_delivers_everything_and_calls_nobody_twice(
    queue_db, conn, tg, el, procs
):
    n_tg, n_voice = 60, 12
    chats = [2000 + i for i in range(n_tg)]
    phones = [f"+1555020{i:04d}" for i in range(n_voice)]
    for c in chats:
        tg.always(c, "slow:0.3")
    for ph in phones:
        el.script(ph, "slow:0.5")
    tg_users = [await make_user(conn, telegram_id=c) for c in chats]
    voice_users = [await make_user(conn, phone=ph) for ph in phones]
    env = shim_env(
        queue_db,
        tg,
        el,
        concurrency=8,
        lease_seconds=3,
        telegram_timeout=1,
        voice_timeout=1,
        sweep_interval=0.5,
        telegram_chat_rate=100,
        telegram_rate=1000,
    )
    p = procs(env)
    await p.wait_ready()
    ids = [await schedule(conn, u, "telegram", {"text": f"to {u}"}) for u in tg_users]
    ids += [await schedule(conn, u, "voice", {}, event_type="call_reminder") for u in voice_users]
    await wait_for(lambda: len(tg.delivered()) >= 8 and len(el.calls) >= 2, what="progress")
    p.kill()
    cur = await conn.execute(
        "SELECT id, platform, content FROM nikita.scheduled_events WHERE status = 'sending'"
    )
    in_flight = await cur.fetchall()
    assert in_flight, "the kill should land mid-batch"
    in_flight_chats = {r["content"]["chat_id"] for r in in_flight if r["platform"] == "telegram"}
    in_flight_voice = {r["id"] for r in in_flight if r["platform"] == "voice"}

    p2 = procs(env, "restart")
    await p2.wait_ready()

    async def settled() -> bool:
        counts = await status_counts(conn)
        return counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0

    await wait_for(settled, within=40, what="every event to settle after the restart")
    await p2.stop()

    rows = await shim.events(conn, ids)
    tg_rows = [r for r in rows if r["platform"] == "telegram"]
    assert all(r["status"] == "delivered" for r in tg_rows), [
        (r["status"], r["last_error"]) for r in tg_rows if r["status"] != "delivered"
    ]
    per_chat = collections.Counter(m["chat_id"] for m in tg.delivered())
    assert set(per_chat) == set(chats)  # every Telegram event arrived
    duplicated = {c for c, n in per_chat.items() if n > 1}
    assert duplicated <= in_flight_chats  # duplicates only among those in flight at the kill

    calls = collections.Counter(c["to_number"] for c in el.calls)
    assert all(n == 1 for n in calls.values()), calls  # no call placed twice
    for r in rows:
        if r["platform"] != "voice":
            continue
        if r["id"] in in_flight_voice:
            assert r["status"] == "failed" and "outcome unknown" in r["last_error"], r
        else:
            assert r["status"] == "delivered", r


async def test_voice_claimed_only_for_a_free_call_slot_so_kill_9_leaves_few_unknown(
    queue_db, conn, el, procs
):
    """Voice concurrency 1, 40 due calls, kill -9 in the middle of a call: only that call can
    end 'outcome unknown'; every other event is delivered after the restart or still pending
    (before, the shim claimed them all at once and each ended 'failed outcome unknown')."""
    phones = [f"+1555040{i:04d}" for i in range(40)]
    for ph in phones:
        el.script(ph, "slow:0.4")
    users = [await make_user(conn, phone=ph) for ph in phones]
    env = shim_env(
        queue_db,
        el=el,
        voice_concurrency=1,
        lease_seconds=3,
        voice_timeout=1,
        telegram_timeout=1,
        sweep_interval=0.5,
    )
    p = procs(env)
    await p.wait_ready()
    ids = [await schedule(conn, u, "voice", {}, event_type="call_reminder") for u in users]
    # mid-call: the third call is placed and its answer not sent yet
    await wait_for(lambda: len(el.calls) >= 3 and el.in_progress == 1, what="a call in progress")
    p.kill()
    started = {c["to_number"] for c in el.calls}
    cur = await conn.execute(
        "SELECT content->>'to_number' AS phone FROM nikita.scheduled_events"
        " WHERE status = 'sending'"
    )
    claimed = [r["phone"] for r in await cur.fetchall()]
    assert len(claimed) == 1, claimed  # one call slot: one claimed voice event
    assert set(claimed) <= started

    p2 = procs(env, "restart")
    await p2.wait_ready()

    async def recovered() -> bool:
        counts = await status_counts(conn)
        return counts.get("failed", 0) >= 1 and counts.get("delivered", 0) >= len(started) + 2

    await wait_for(recovered, within=30, what="the lost call to fail and more to go out")
    assert await p2.stop() == 0

    rows = await shim.events(conn, ids)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1, [(r["status"], r["last_error"]) for r in failed]
    assert failed[0]["last_error"].startswith("outcome unknown")
    assert failed[0]["content"]["to_number"] in started  # a call that really started
    assert {r["status"] for r in rows} <= {"delivered", "pending", "failed"}
    calls = collections.Counter(c["to_number"] for c in el.calls)
    assert all(n == 1 for n in calls.values()), calls  # no call placed twice


async def test_two_shims_never_deliver_an_event_twice(queue_db, conn, tg, procs):
    chats = [3000 + i for i in range(40)]
    users = [await make_user(conn, telegram_id=c) for c in chats]
    env = shim_env(queue_db, tg, batch_size=7, telegram_rate=2000, telegram_chat_rate=1000)
    a = procs({**env, "NIKITA_SHIM_WORKER_ID": "shim-a"}, "a")
    b = procs({**env, "NIKITA_SHIM_WORKER_ID": "shim-b"}, "b")
    await a.wait_ready()
    await b.wait_ready()
    # 40 users x 5 events, in one statement each round: both shims wake for every round
    for n in range(5):
        await conn.execute(
            "SELECT nikita.schedule_event(u, 'telegram', 'message_delivery',"
            " jsonb_build_object('text', 'm' || %s || ' ' || u::text))"
            " FROM unnest(%s::uuid[]) AS u",
            (n, users),
        )
    await wait_for(lambda: len(tg.delivered()) >= 200, within=40, what="200 messages")
    await asyncio.sleep(0.5)
    await a.stop()
    await b.stop()
    texts = collections.Counter((m["chat_id"], m["text"]) for m in tg.delivered())
    assert len(texts) == 200
    assert max(texts.values()) == 1, [k for k, v in texts.items() if v > 1]
    counts = await status_counts(conn)
    assert counts == {"delivered": 200}
    # each event was delivered by exactly one shim, and both took part
    by_a, by_b = delivered_ids(a.log()), delivered_ids(b.log())
    assert by_a and by_b
    assert not by_a & by_b
    cur = await conn.execute("SELECT id::text AS id FROM nikita.scheduled_events")
    assert by_a | by_b == {r["id"] for r in await cur.fetchall()}
    # per user, messages arrived in scheduling order
    for c in chats:
        sent = [t.split(" ")[0] for t in tg.texts(c)]
        assert sent == ["m0", "m1", "m2", "m3", "m4"], sent


async def test_systemd_ready_watchdog_and_stopping(queue_db, tg, procs):
    sock_dir = tempfile.mkdtemp(prefix="nikita-notify-")
    path = os.path.join(sock_dir, "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    try:
        env = shim_env(queue_db, tg)
        env |= {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"}
        p = procs(env)
        await p.wait_ready()
        received: list[str] = []

        def drain() -> None:
            while True:
                try:
                    received.extend(server.recv(4096).decode().splitlines())
                except BlockingIOError:
                    return

        await wait_for(
            lambda: (drain(), received.count("WATCHDOG=1") >= 2)[1], within=5, what="pings"
        )
        assert "READY=1" in received
        assert received.index("READY=1") < received.index("WATCHDOG=1")
        await p.stop()
        drain()
        assert "STOPPING=1" in received
    finally:
        server.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_cluster():
    """A throwaway cluster of our own (never restart the shared one)."""
    base = tempfile.mkdtemp(prefix="nikita-shim-pg-", dir="/var/tmp")
    os.chmod(base, 0o755)
    env = {
        **os.environ,
        "NIKITA_PGDATA": os.path.join(base, "data"),
        "NIKITA_PGPORT": str(_free_port()),
    }
    script = str(ROOT / "scripts" / "db.sh")

    def ctl(action: str) -> str:
        out = subprocess.run(
            [script, action], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    url = ctl("up")
    migrate = subprocess.run(
        [str(ROOT / "scripts" / "migrate.sh")],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    try:
        yield url, ctl
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


async def test_database_restarted_under_the_shim(own_cluster, tg, procs):
    url, ctl = own_cluster
    conn = await shim.connect(url)
    user = await make_user(conn, telegram_id=6006)
    p = procs(shim_env(url, tg, reconnect_max_backoff=1))
    await p.wait_ready()
    await schedule(conn, user, "telegram", {"text": "before"})
    await wait_for(lambda: tg.texts(6006) == ["before"], what="the first message")
    await conn.close()

    ctl("down")
    await p.wait_log("database connection lost", within=10)
    await asyncio.sleep(1.0)  # the shim keeps retrying meanwhile
    assert p.proc.poll() is None, p.log()
    ctl("up")
    # queued as soon as the database is back, possibly before the shim has reconnected
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c2:
        await c2.execute(
            "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery', %s::jsonb)",
            (user, '{"text": "after"}'),
        )
    await wait_for(
        lambda: tg.texts(6006) == ["before", "after"], within=20, what="the queued message"
    )
    assert p.log().count('msg="database connected"') >= 2
    assert await p.stop() == 0
