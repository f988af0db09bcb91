"""The summary writer hosted by the shim (`--summary-writer`, summaries.py): days written in
Nikita's voice beside the factual text; a writer that raises or times out leaves the fact, is
retried, then failed; two shims never write the same day twice. No language model: the
writers here are the tests' own."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from fakes.shim import make_user, running_shim, shim_env, wait_for

from nikita_shim.summary_store import SummaryDay


async def _days(conn: Any, user: Any, n: int) -> None:
    """n days of activity for `user`, summarised by the real summary job (which NOTIFYs)."""
    await conn.execute(
        "INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type,"
        " recorded_at)"
        " SELECT %s, 50 - k, -1, 1, 'decay', '2026-11-01 12:00Z'::timestamptz + k * interval"
        " '1 day' FROM generate_series(0, %s - 1) AS k",
        (user, n),
    )
    cur = await conn.execute(
        "SELECT nikita.generate_daily_summaries('2026-12-01 00:00Z', '60 days') AS r"
    )
    assert (await cur.fetchone())["r"]["summaries"] == n


async def _rows(conn: Any) -> dict[int, dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, date, writer_state, writer_attempts, summary_text, nikita_summary_text,"
        " emotional_tone, writer_error FROM nikita.daily_summaries"
    )
    return {r["id"]: r for r in await cur.fetchall()}


async def _settled(conn: Any, states: tuple[str, ...] = ("written", "failed")) -> bool:
    return all(r["writer_state"] in states for r in (await _rows(conn)).values())


async def test_writer_text_beside_the_facts_and_failures_keep_them(queue_db, conn):
    await conn.execute(
        "UPDATE nikita.settings SET value = '2' WHERE key = 'summary_writer_max_attempts'"
    )
    user = await make_user(conn, telegram_id=4242)
    seen: list[SummaryDay] = []

    async def writer(day: SummaryDay) -> Any:
        seen.append(day)
        if day.date.day == 2:
            raise RuntimeError("model overloaded")
        if day.date.day == 3:
            return "   "  # no usable text: a failed attempt too
        text = f"Score {day.score_start} to {day.score_end}. Miss me?"
        return {"text": text, "emotional_tone": "playful"}

    # a short poll: the failed attempts are retried within the test
    async with running_shim(shim_env(queue_db, poll_interval=0.2), writer=writer):
        await _days(conn, user, 3)
        await wait_for(lambda: _settled(conn), what="every day written or failed")
    rows = {r["date"].day: r for r in (await _rows(conn)).values()}
    ok, raised, blank = rows[1], rows[2], rows[3]
    assert ok["writer_state"] == "written"
    assert ok["nikita_summary_text"] == "Score 51.00 to 50.00. Miss me?"
    assert ok["emotional_tone"] == "playful"
    assert ok["summary_text"].startswith("Sun 01 Nov 2026 (UTC)"), "the facts stay"
    assert ok["writer_attempts"] == 1
    for bad, why in ((raised, "RuntimeError: model overloaded"), (blank, "no text")):
        assert bad["writer_state"] == "failed"
        assert bad["writer_attempts"] == 2, "retried once, then failed (max attempts 2)"
        assert bad["nikita_summary_text"] is None
        assert bad["summary_text"].endswith("decay -1.00."), "the factual text is kept"
        assert why in bad["writer_error"]
    calls = Counter(d.date.day for d in seen)
    assert calls == {1: 1, 2: 2, 3: 2}
    assert {d.timezone for d in seen} == {"UTC"} and {d.chapter for d in seen} == {1}


async def test_writer_timeout_leaves_the_facts(queue_db, conn):
    await conn.execute(
        "UPDATE nikita.settings SET value = '1' WHERE key = 'summary_writer_max_attempts'"
    )
    user = await make_user(conn, telegram_id=4343)
    cancelled = asyncio.Event()

    async def slow(day: SummaryDay) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    env = shim_env(queue_db, summary_timeout=0.5)
    async with running_shim(env, writer=slow):
        await _days(conn, user, 1)
        await wait_for(lambda: _settled(conn, ("failed",)), what="the day to fail")
    (row,) = (await _rows(conn)).values()
    assert row["writer_error"] == "writer timed out after 0.5s"
    assert row["nikita_summary_text"] is None and row["summary_text"]
    assert cancelled.is_set(), "the writer was cancelled at the timeout"


WRITER_MODULE = """
import asyncio, os

async def write(day):
    await asyncio.sleep(0.05)
    with open(os.environ["SUMM_LOG"], "a") as f:
        f.write(f"{day.id} {os.getpid()}\\n")
    return (f"day {day.id} by {os.getpid()}", "warm")
"""


async def test_two_shims_never_write_the_same_day_twice(queue_db, conn, procs, tmp_path: Path):
    (tmp_path / "summ_writer_mod.py").write_text(WRITER_MODULE)
    log = tmp_path / "calls.log"
    log.touch()
    common = {"PYTHONPATH": str(tmp_path), "SUMM_LOG": str(log), "PATH": "/usr/bin:/bin"}
    env = shim_env(queue_db, summary_batch=3, summary_concurrency=3) | common
    # one by the flag, one by the environment variable
    a = procs(env, "a", ("--summary-writer", "summ_writer_mod:write"))
    b = procs(env | {"NIKITA_SHIM_SUMMARY_WRITER": "summ_writer_mod:write"}, "b")
    await a.wait_ready()
    await b.wait_ready()
    users = [await make_user(conn, telegram_id=5000 + i) for i in range(6)]
    for user in users:
        await _days(conn, user, 5)  # 30 days, each job run NOTIFYs both shims
    await wait_for(lambda: _settled(conn, ("written",)), within=30, what="every day written")
    assert await a.stop() == 0 and await b.stop() == 0
    rows = await _rows(conn)
    calls = Counter(int(line.split()[0]) for line in log.read_text().splitlines())
    assert len(rows) == 30
    assert calls == Counter(rows.keys()), "each day handed to exactly one writer call"
    assert {r["writer_attempts"] for r in rows.values()} == {1}
    writers = {line.split()[1] for line in log.read_text().splitlines()}
    assert all(r["nikita_summary_text"].startswith(f"day {i} by ") for i, r in rows.items())
    print(f"written by {len(writers)} shim(s)", file=sys.stderr)


def test_bad_writer_spec_is_a_configuration_error(queue_db, tmp_path: Path):
    import subprocess

    from fakes.shim import SHIM_BIN

    for spec, why in (("nomodule", "expected module:function"), ("json:dumps", "async")):
        out = subprocess.run(
            [str(SHIM_BIN), "run", "--summary-writer", spec],
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": queue_db},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2, out
        assert why in out.stderr
