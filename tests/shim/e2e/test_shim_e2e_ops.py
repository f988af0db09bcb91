"""Operating the shim: status/check, Prometheus metrics, the console transport of `make run`,
the conversation processor."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from fakes import shim
from fakes.shim import ShimProcess, make_user, running_shim, schedule, shim_env, wait_for

from nikita_shim import __version__

SHIM = Path(sys.executable).parent / "nikita-shim"


def cli(*args: str, db_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHIM), *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _jobs_all_fine(conn) -> None:
    await conn.execute(
        "INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, result,"
        " duration_ms) SELECT job_name, now(), now(), 'completed', '{}', 1"
        " FROM nikita.job_catalog"
    )


PLUGIN_LINE = re.compile(r"^NIKITA-SHIM (OK|WARNING|CRITICAL|UNKNOWN) - [^\n|]+( \| [^\n]+)?\n$")


def plugin(out: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    """(exit code, text, perfdata) of `check`, after asserting the one-line plugin format."""
    assert PLUGIN_LINE.match(out.stdout), out
    state = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[out.returncode]
    assert out.stdout.startswith(f"NIKITA-SHIM {state} - "), out
    text, _, perf = out.stdout.strip().partition(" | ")
    return out.returncode, text, perf


async def test_check_and_status_healthy(queue_db, conn):
    await _jobs_all_fine(conn)
    code, text, perf = plugin(cli("check", db_url=queue_db))
    assert code == 0
    assert text == "NIKITA-SHIM OK - queue and jobs healthy"
    for item in ("telegram_lag=0s;300;900;0", "voice_pending=0;;;0", "jobs_failing=0;0;;0"):
        assert item in perf.split(), perf
    out = cli("status", db_url=queue_db)
    assert out.returncode == 0, out
    assert "Queue" in out.stdout and "Jobs" in out.stdout
    for name in ("platform", "pending", "oldest_due_lag_s", "job_name", "sweep", "decay"):
        assert name in out.stdout
    assert "Health: OK" in out.stdout
    out = cli("status", "--json", db_url=queue_db)
    assert '"queue"' in out.stdout and '"jobs"' in out.stdout


async def test_check_warning_and_critical(queue_db, conn):
    await _jobs_all_fine(conn)
    user = await make_user(conn, telegram_id=11)
    eid = await schedule(conn, user, "telegram", {"text": "stuck"})
    await conn.execute(
        "UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 hour' WHERE id = %s",
        (eid,),
    )
    code, text, perf = plugin(cli("check", db_url=queue_db))  # 300 s / 900 s
    assert code == 2
    assert "queue telegram" in text and "waiting" in text
    assert "telegram_due=1;;;0" in perf.split()
    code, text, _ = plugin(cli("check", "-w", "600", "-c", "7200", db_url=queue_db))
    assert code == 1 and "queue telegram" in text
    assert plugin(cli("check", db_url=queue_db, NIKITA_SHIM_CHECK_MAX_LAG="7200"))[0] == 0

    await conn.execute(
        "INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, error,"
        " duration_ms) VALUES ('decay', now(), now() + interval '1 second', 'failed', 'boom', 5)"
    )
    code, text, perf = plugin(cli("check", db_url=queue_db, NIKITA_SHIM_CHECK_MAX_LAG="7200"))
    assert code == 1
    assert "job decay: last run failed" in text
    assert "jobs_failing=1;0;;0" in perf.split()


def test_check_database_unreachable_is_critical():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, text, _ = plugin(cli("check", db_url=f"postgresql://nobody@127.0.0.1:{port}/nikita"))
    assert code == 2
    assert "database unreachable" in text


def test_check_unknown(queue_db):
    # reachable, but no nikita schema there (the cluster's postgres database)
    other = re.sub(r"dbname=\S+", "dbname=postgres", queue_db)
    assert other != queue_db
    code, text, _ = plugin(cli("check", db_url=other))
    assert code == 3 and "cannot read health views" in text
    code, text, _ = plugin(cli("check", "-w", "900", "-c", "60", db_url=queue_db))
    assert code == 3 and "bad -w/-c" in text
    out = cli("check", db_url=queue_db, NIKITA_SHIM_CONCURRENCY="-3")
    code, text, _ = plugin(out)
    assert code == 3 and "invalid configuration" in text
    assert "NIKITA_SHIM_CONCURRENCY" in out.stderr


async def test_metrics_endpoint(queue_db, conn, tg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = await make_user(conn, telegram_id=8080)
    tg.script(8080, "403")
    async with running_shim(shim_env(queue_db, tg, metrics_port=port)):
        a = await schedule(conn, user, "telegram", {"text": "one"})
        await shim.wait_status(conn, a, "failed")
        b = await schedule(conn, user, "telegram", {"text": "two"})
        await shim.wait_status(conn, b, "delivered")
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'nikita_shim_deliveries_total{outcome="delivered",platform="telegram"} 1.0' in text
    assert 'nikita_shim_deliveries_total{outcome="failed",platform="telegram"} 1.0' in text
    assert 'nikita_shim_delivery_lateness_seconds_count{platform="telegram"} 2.0' in text
    assert "nikita_shim_db_connected 1.0" in text
    assert "nikita_shim_in_flight" in text
    assert 'nikita_shim_queue_pending{platform="telegram"}' in text
    # process metrics, the version, the job gauges (cluster-wide, like the queue's)
    for name in ("process_resident_memory_bytes", "process_open_fds", "python_info"):
        assert f"\n{name}" in text, name
    assert f'nikita_shim_build_info{{version="{__version__}"}} 1.0' in text
    assert 'nikita_shim_job_overdue{job_name="decay"}' in text
    assert 'nikita_shim_job_failing{job_name="sweep"}' in text


async def test_console_transport_without_a_token(queue_db, conn, tmp_path):
    user = await make_user(conn, telegram_id=31337)
    env = shim_env(queue_db)  # no TELEGRAM_BOT_TOKEN: console
    p = ShimProcess(env, tmp_path / "console.log").start()
    try:
        await p.wait_ready()
        eid = await schedule(conn, user, "telegram", {"text": "Hello from the console"})
        row = await shim.wait_status(conn, eid, "delivered")
        await p.wait_log(f"[telegram message_delivery {eid}] chat 31337: Hello from the console")
        assert row["provider_ref"] == f"console:{eid}"
        assert await p.stop() == 0
    finally:
        p.close()


async def test_conversation_processor(queue_db, conn, tg):
    user = await make_user(conn, telegram_id=123)
    seen: list = []

    async def processor(conv):
        seen.append(conv)
        if conv.platform == "voice":
            raise RuntimeError("transcript missing")
        return {"summary": f"talked ({conv.platform})", "emotional_tone": "warm"}

    # a 30 s fallback poll: the failed one is not claimed again during the test
    async with running_shim(shim_env(queue_db, tg, poll_interval=30), processor=processor):
        cur = await conn.execute(
            "INSERT INTO nikita.conversations (user_id, platform, status, ended_at)"
            " VALUES (%s, 'telegram', 'ended', now()), (%s, 'voice', 'ended', now())"
            " RETURNING id, platform",
            (user, user),
        )
        ids = {r["platform"]: r["id"] for r in await cur.fetchall()}
        # what detect_stale_conversations() sends when it ends conversations
        await conn.execute("SELECT pg_notify('nikita_conversations', '2')")

        async def settled() -> bool:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM nikita.conversations WHERE status = 'processing'"
                " OR processing_attempts = 0"
            )
            return (await cur.fetchone())["n"] == 0

        await wait_for(settled, what="both conversations to be processed once")
    cur = await conn.execute(
        "SELECT id, status, summary, emotional_tone, error, processing_attempts"
        " FROM nikita.conversations"
    )
    rows = {r["id"]: r for r in await cur.fetchall()}
    ok, bad = rows[ids["telegram"]], rows[ids["voice"]]
    assert (ok["status"], ok["summary"], ok["emotional_tone"]) == (
        "processed",
        "talked (telegram)",
        "warm",
    )
    # Each claim of the failing conversation is one processor call and one attempt. Usually
    # one; a second wake-up (the listener's connect racing the NOTIFY) may claim it again,
    # which the database allows up to 3 attempts.
    voice_calls = sum(1 for c in seen if c.id == ids["voice"])
    assert voice_calls >= 1
    assert bad["processing_attempts"] == voice_calls
    assert bad["status"] == ("ended" if voice_calls < 3 else "failed")
    assert "transcript missing" in bad["error"]
    assert sum(1 for c in seen if c.id == ids["telegram"]) == 1, "a processed one is done"
