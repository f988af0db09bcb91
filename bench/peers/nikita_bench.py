"""nikita-tasks (the shim) under the side-by-side workloads (see benchlib.py, docs/bench.md).

Run with the project virtualenv (it imports nikita_shim):
    .venv/bin/python bench/peers/nikita_bench.py --dsn URL --out FILE.json [--quick]

The database at URL is migrated with `DATABASE_URL=URL NIKITA_CRON_FIND=no scripts/migrate.sh`
(idempotent; no pg_cron job is scheduled for it, so none runs during the measurement). Events
are scheduled through the public API, `nikita.schedule_event(user_id, 'telegram',
'message_delivery', '{"text": "x"}', at)`, one user per event (the queue keeps one event in
flight per user, so the 20,000 drain events belong to 20,000 users). The shim is the real
`nikita_shim.service.Shim` with its default settings (batch and concurrency from the shim's
Config, the environment's NIKITA_SHIM_* override them as in production) and a no-op transport
that records the time it is called; it runs in the driver's
process and event loop, started the way `nikita-shim run` starts it (nikita_shim.runtime.run
when the shim has it, e.g. uvloop when its config chooses it; else asyncio.run). Workload D
runs `nikita-shim run` with the noop transports as a subprocess.

`--durability async` sets NIKITA_SHIM_TELEGRAM_DURABILITY=async (the opt-in asynchronous
commit for Telegram claims and completions) and reports the system as "nikita-tasks (async
commit)"; `--probe-durability` exits 0 when the shim's Config has that setting, 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import logging
import os
import subprocess
import sys
import time
from collections.abc import Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from benchlib import (
    DUE_NOW_GAP_S,
    DUE_NOW_TIMEOUT_S,
    FUTURE_GRACE_S,
    CpuMeter,
    Sizes,
    WorkerProcess,
    cpu_per_1k,
    drain_note,
    future_offsets,
    log,
    measure_drain,
    parser,
    rss_mb,
    sizes,
    summary_ms,
    wait_started,
    write_result,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "shim"))

from nikita_shim.config import Config, load_config  # noqa: E402
from nikita_shim.events import ClaimedEvent, Outcome  # noqa: E402
from nikita_shim.service import Shim  # noqa: E402
from nikita_shim.transports import DeliveryContext  # noqa: E402

SCHEDULE = (
    "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery', '{\"text\": \"x\"}'::jsonb)"
)
SCHEDULE_AT = (
    "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery', '{\"text\": \"x\"}'::jsonb,"
    " to_timestamp(%s))"
)
# all users' events in one statement (one NOTIFY: the queue's trigger is per statement)
SCHEDULE_ALL = (
    "SELECT count(nikita.schedule_event(u.id, 'telegram', 'message_delivery',"
    ' \'{"text": "x"}\'::jsonb)) FROM (SELECT id FROM nikita.users ORDER BY telegram_id'
    " LIMIT %s) u"
)
UNFINISHED = "SELECT count(*) FROM nikita.scheduled_events WHERE status IN ('pending', 'sending')"
TELEGRAM_ID_BASE = 700_000_000

drain_details: list[dict[str, Any]] = []
started: dict[Any, float] = {}
calls = {"n": 0}  # transport calls: exactly-once means one per event
due_at: dict[Any, float] = {}
start_signal = asyncio.Event()
target = {"n": -1}
all_started = asyncio.Event()


class RecordingNoop:
    """The no-op transport (as nikita_shim.transports.noop) that also records its call time."""

    name = "bench-noop"

    def __init__(self, platform: str) -> None:
        self.platform = platform

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        now = time.time()
        ctx.calling()
        calls["n"] += 1
        started[event.id] = now
        due_at[event.id] = event.scheduled_at.timestamp()
        start_signal.set()
        if len(started) == target["n"]:
            all_started.set()
        return Outcome.delivered(None)


DURABILITY_ENV = "NIKITA_SHIM_TELEGRAM_DURABILITY"
durability = {"mode": ""}  # "" = the shim's default; "async" = --durability async
runner = {"name": "asyncio.run"}  # what started the event loop (stated in the notes)


def shim_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("NIKITA_SHIM_")}
    if durability["mode"]:
        env[DURABILITY_ENV] = durability["mode"]
    env.update(
        {
            "DATABASE_URL": dsn,
            "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
            "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
        }
    )
    env.setdefault("NIKITA_SHIM_LOG_LEVEL", "warning")
    return env


def config(dsn: str) -> Config:
    """The shim's own defaults (overridden by NIKITA_SHIM_* as in production): nothing here
    hard-codes batch size or concurrency."""
    loader = getattr(Config, "from_env", None)
    return loader(shim_env(dsn)) if callable(loader) else load_config(shim_env(dsn))


def supports_async_durability() -> bool:
    """True when the shim's Config reads NIKITA_SHIM_TELEGRAM_DURABILITY: the configuration
    loaded with =async differs from the one loaded with =durable."""
    env = {
        "DATABASE_URL": "postgresql://probe@127.0.0.1/probe",
        "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
        "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
    }
    try:
        durable = load_config({**env, DURABILITY_ENV: "durable"})
        relaxed = load_config({**env, DURABILITY_ENV: "async"})
    except Exception:
        return False  # a shim that rejects the values does not support the setting
    return any(
        getattr(durable, f.name) != getattr(relaxed, f.name) for f in dataclasses.fields(durable)
    )


def run_like_production(coro: Coroutine[Any, Any, None], cfg: Config) -> None:
    """nikita_shim.runtime.run (the way `nikita-shim run` runs its loop) when the shim has it,
    else asyncio.run."""
    try:
        from nikita_shim import runtime  # type: ignore[attr-defined]
    except ImportError:
        asyncio.run(coro)
        return
    runner["name"] = "nikita_shim.runtime.run"
    params = inspect.signature(runtime.run).parameters
    for name in ("config", "cfg"):
        if name in params:
            runtime.run(coro, **{name: cfg})
            return
    runtime.run(coro)


def migrate(dsn: str) -> None:
    log("nikita: scripts/migrate.sh")
    res = subprocess.run(
        [str(ROOT / "scripts" / "migrate.sh")],
        # no pg_cron jobs for a bench database (as scripts/test.sh): they would run in it during
        # the measurement, and outlive it when run.sh drops it (a later migrate of another
        # database then meets their names)
        env={**os.environ, "DATABASE_URL": dsn, "NIKITA_CRON_FIND": "no"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        raise SystemExit(f"migrate.sh failed ({res.returncode}):\n{res.stderr[-3000:]}")


async def sql(conn: psycopg.AsyncConnection[Any], query: str, *params: Any) -> list[Any]:
    cur = await conn.execute(query, params or None)
    return await cur.fetchall() if cur.description else []


async def setup_users(conn: psycopg.AsyncConnection[Any], n: int) -> list[Any]:
    log(f"nikita: creating {n} users")
    t0 = time.monotonic()
    await sql(
        conn,
        "INSERT INTO nikita.users (telegram_id, onboarding_status)"
        " SELECT %s + g, 'completed' FROM generate_series(1, %s) g"
        " ON CONFLICT (telegram_id) DO NOTHING",
        TELEGRAM_ID_BASE,
        n,
    )
    log(f"nikita: users ready in {time.monotonic() - t0:.1f}s")
    rows = await sql(
        conn,
        "SELECT id FROM nikita.users WHERE telegram_id > %s ORDER BY telegram_id LIMIT %s",
        TELEGRAM_ID_BASE,
        n,
    )
    if len(rows) < n:
        raise SystemExit(f"only {len(rows)} bench users")
    return [r[0] for r in rows]


async def reset(conn: psycopg.AsyncConnection[Any]) -> None:
    await sql(conn, "TRUNCATE nikita.scheduled_events")
    started.clear()
    calls["n"] = 0
    due_at.clear()
    all_started.clear()
    target["n"] = -1


async def checkpoint(conn: psycopg.AsyncConnection[Any]) -> None:
    """Statistics as in a database in service (autoanalyze), then a checkpoint."""
    await sql(conn, "ANALYZE nikita.scheduled_events")
    try:
        await sql(conn, "CHECKPOINT")
    except psycopg.Error:
        pass  # not a superuser: skip


async def unfinished(conn: psycopg.AsyncConnection[Any]) -> int:
    return int((await sql(conn, UNFINISHED))[0][0])


async def wait_finished(
    conn: psycopg.AsyncConnection[Any], limit_s: float, alive: Any = None
) -> float:
    """Wall time at which no event is pending or sending any more (polled every 10 ms)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("the shim subprocess exited")
        if (await sql(conn, UNFINISHED))[0][0] == 0:
            return time.time()
        await asyncio.sleep(0.01)
    raise TimeoutError("events still unfinished")


async def start_shim(cfg: Config) -> tuple[Shim, asyncio.Task[int]]:
    transports = {p: RecordingNoop(p) for p in ("telegram", "voice")}
    shim = Shim(cfg, transports=transports)
    return shim, asyncio.create_task(shim.run())


async def stop_shim(shim: Shim, task: asyncio.Task[int]) -> None:
    shim.stop()
    try:
        await asyncio.wait_for(task, 60)
    except TimeoutError:
        task.cancel()


async def drain(cfg: Config, conn: psycopg.AsyncConnection[Any], sz: Sizes) -> list[float]:
    out: list[float] = []
    cpu = CpuMeter(conn.info.backend_pid)
    for run in range(sz.drain_runs):
        await reset(conn)
        n = (await sql(conn, SCHEDULE_ALL, sz.drain_jobs))[0][0]
        assert n == sz.drain_jobs, n
        await checkpoint(conn)
        target["n"] = sz.drain_jobs
        cpu.start()
        t0 = time.time()
        shim, task = await start_shim(cfg)
        try:
            d = await measure_drain(
                t0, sz.drain_jobs, sz.drain_timeout_s, all_started, lambda: unfinished(conn), cpu
            )
        finally:
            await stop_shim(shim, task)
        # exactly-once: one transport call per event, and the database agrees
        d["exactly_once"] = calls["n"] == d["finished"] == len(started)
        if not d["exactly_once"]:
            log(f"nikita: EXACTLY-ONCE VIOLATED: {calls['n']} calls, {len(started)} events")
        log(
            f"nikita drain run {run + 1}: {d['finished']}/{sz.drain_jobs}"
            f" in {d['seconds']:.2f}s"
            f" (handler saw all after {d['all_started_s']}s)"
        )
        drain_details.append(d)
        out.append(d["eps"])
    return out


async def due_now(conn: psycopg.AsyncConnection[Any], users: list[Any], sz: Sizes) -> list[float]:
    lat: list[float] = []
    for i in range(sz.warmup + sz.due_now):
        (event_id,) = (await sql(conn, SCHEDULE, users[i]))[0]
        committed = time.time()
        await wait_started(started, start_signal, [event_id], DUE_NOW_TIMEOUT_S)
        if i >= sz.warmup:
            lat.append(started[event_id] - committed)
        await asyncio.sleep(DUE_NOW_GAP_S)
    return lat


async def future(conn: psycopg.AsyncConnection[Any], users: list[Any], sz: Sizes) -> list[float]:
    base = time.time()
    ids = []
    for user, off in zip(
        users, future_offsets(sz.future_jobs, sz.future_min_s, sz.future_max_s), strict=False
    ):
        ids.append((await sql(conn, SCHEDULE_AT, user, base + off))[0][0])
    inserted = time.time() - base
    if inserted >= sz.future_min_s:
        log(f"warning: scheduling the future events took {inserted:.2f}s")
    await wait_started(started, start_signal, ids, sz.future_max_s + FUTURE_GRACE_S)
    return [started[i] - due_at[i] for i in ids]


async def rss(dsn: str, conn: psycopg.AsyncConnection[Any], sz: Sizes) -> float:
    await reset(conn)
    await sql(conn, SCHEDULE_ALL, sz.rss_jobs)  # the shim drains them as soon as it is up
    binary = Path(sys.executable).parent / "nikita-shim"
    argv = [str(binary), "run"] if binary.exists() else [sys.executable, "-m", "nikita_shim", "run"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "shim"),
        **shim_env(dsn),
    }
    proc = WorkerProcess(argv, env=env)
    try:
        await wait_finished(conn, sz.drain_timeout_s, proc.alive)
        await asyncio.sleep(sz.rss_idle_s)
        return rss_mb(proc.pid)
    finally:
        err = proc.stop()
        if err.strip():
            log("nikita-shim stderr: " + err.strip()[-600:])


async def main(args: Any, cfg: Config) -> None:
    sz = sizes(args.quick)
    if args.round <= 1:
        migrate(args.dsn)
    logging.getLogger("nikita_shim").setLevel(getattr(logging, cfg.log_level.upper()))
    n_users = max(sz.drain_jobs, sz.rss_jobs, sz.warmup + sz.due_now + sz.future_jobs)
    async with await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as conn:
        users = await setup_users(conn, n_users)
        log("nikita: A drain")
        drain_eps = await drain(cfg, conn, sz)
        await reset(conn)
        shim, task = await start_shim(cfg)
        try:
            await asyncio.wait_for(shim.ready.wait(), 30)
            await asyncio.sleep(0.5)
            log("nikita: B due-now latency")
            b = await due_now(conn, users, sz)
            log("nikita: C future lateness")
            c = await future(conn, users[sz.warmup + sz.due_now :], sz)
        finally:
            await stop_shim(shim, task)
        log("nikita: D shim RSS")
        rss_value = await rss(args.dsn, conn, sz)
        await reset(conn)
    name = "nikita-tasks (async commit)" if durability["mode"] == "async" else "nikita-tasks"
    mode = f" {DURABILITY_ENV}=async (Telegram claims/completions commit asynchronously);"
    write_result(
        args.out,
        {
            "system": name,
            "version": version("nikita-tasks"),
            "concurrency": f"1 shim process, batch_size={cfg.batch_size},"
            f" concurrency={cfg.concurrency}, pool_size={cfg.pool_size} (defaults),"
            " LISTEN/NOTIFY + next_due_at timer",
            "notes": f"Real nikita_shim Shim in the driver's process ({runner['name']}, as"
            " `nikita-shim run`) with a recording no-op transport;"
            + (mode if durability["mode"] else "")
            + " events via nikita.schedule_event, one"
            " user per event (per-user exclusivity); finished = no event pending/sending."
            " B: latency = transport called - return of schedule_event (commit acknowledged),"
            f" {sz.warmup} warm-up iterations dropped. C: schedule_event(..., at), lateness ="
            " transport called - scheduled_at as stored. D: `nikita-shim run` (noop transports,"
            f" log level warning) as a subprocess, VmRSS after draining {sz.rss_jobs} events"
            f" and {sz.rss_idle_s:g} s idle." + drain_note(drain_details),
            "drain_eps": drain_eps,
            "drain_detail": drain_details,
            "cpu_ms_per_1k": cpu_per_1k(drain_details),
            "exactly_once": all(d.get("exactly_once") for d in drain_details),
            "round": args.round,
            "due_now_ms": summary_ms(b, ("p50", "p90", "p99", "max")),
            "future_late_ms": summary_ms(c, ("p50", "p99", "max")),
            "rss_mb": rss_value,
            "quick": args.quick,
            "drain_jobs": sz.drain_jobs,
        },
    )


def cli() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--durability", choices=("async",), help="NIKITA_SHIM_TELEGRAM_DURABILITY")
    p.add_argument("--probe-durability", action="store_true", help=argparse.SUPPRESS)
    if "--probe-durability" in sys.argv:
        sys.exit(0 if supports_async_durability() else 1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    durability["mode"] = args.durability or ""
    cfg = config(args.dsn)
    run_like_production(main(args, cfg), cfg)


if __name__ == "__main__":
    cli()
