"""Procrastinate 3.10 under the side-by-side workloads (see benchlib.py and docs/bench.md).

Run with the bench virtualenv:
    .bench-venv/bin/python bench/peers/procrastinate_bench.py --dsn URL --out FILE.json [--quick]

Set-up as the Procrastinate docs say: `App(connector=PsycopgConnector(conninfo=...))`, the
schema applied with `app.schema_manager.apply_schema_async()`, one async task, one worker
(`app.run_worker_async`) with concurrency=30 (the docs' how-to "Execute multiple jobs at the
same time" uses 30 for async tasks; the default is 1) and every other worker option at its
default: LISTEN/NOTIFY on, fetch_job_polling_interval 5 s, jobs kept (delete_jobs=never).
The worker runs in the driver's process and event loop (asyncio.run, as `procrastinate
worker` does); workload D runs it alone in a subprocess.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import time
from importlib.metadata import version
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
from procrastinate import App, JobContext, PsycopgConnector

CONCURRENCY = 30
BATCH_INSERT = 1000

drain_details: list[dict[str, Any]] = []
started: dict[int, float] = {}
start_signal = asyncio.Event()
target = {"n": -1}
all_started = asyncio.Event()


def make_app(dsn: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=dsn))

    @app.task(name="noop", pass_context=True)
    async def noop(context: JobContext) -> None:
        now = time.time()
        started[context.job.id] = now  # type: ignore[index]
        start_signal.set()
        if len(started) == target["n"]:
            all_started.set()

    return app


async def sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def ensure_schema(app: App, dsn: str) -> None:
    rows = await sql(dsn, "SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
    if not rows[0][0]:
        log("procrastinate: applying schema")
        await app.schema_manager.apply_schema_async()


async def reset(dsn: str) -> None:
    await sql(
        dsn,
        "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
        " procrastinate_workers RESTART IDENTITY CASCADE",
    )
    started.clear()
    all_started.clear()
    target["n"] = -1


async def checkpoint(dsn: str) -> None:
    """Statistics as in a database in service (autoanalyze), then a checkpoint."""
    await sql(dsn, "ANALYZE procrastinate_jobs")
    try:
        await sql(dsn, "CHECKPOINT")
    except psycopg.Error:
        pass  # not a superuser: skip


UNFINISHED = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


async def unfinished(dsn: str) -> int:
    rows = await sql(dsn, UNFINISHED)
    return int(rows[0][0])


async def unfinished_on(conn: psycopg.AsyncConnection[Any]) -> int:
    """The drain's poll, on one connection (its backend's CPU is left out of the figure)."""
    cur = await conn.execute(UNFINISHED)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def wait_finished(dsn: str, limit_s: float, alive: Any = None) -> float:
    """Wall time at which the database first shows no todo/doing job (polled every 10 ms)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("the worker subprocess exited")
        if await unfinished(dsn) == 0:
            return time.time()
        await asyncio.sleep(0.01)
    raise TimeoutError("jobs still unfinished")


async def start_worker(app: App) -> asyncio.Task[None]:
    task = asyncio.create_task(
        app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=False)
    )
    await asyncio.sleep(0)
    return task


async def stop_worker(task: asyncio.Task[None]) -> None:
    task.cancel()  # procrastinate turns the cancellation into a graceful stop
    try:
        await asyncio.wait_for(task, 30)
    except (asyncio.CancelledError, TimeoutError):
        pass


async def drain(app: App, dsn: str, sz: Sizes) -> list[float]:
    noop = app.tasks["noop"]
    out: list[float] = []
    poll = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    cpu = CpuMeter(poll.info.backend_pid)
    for run in range(sz.drain_runs):
        await reset(dsn)
        for i in range(0, sz.drain_jobs, BATCH_INSERT):
            await noop.batch_defer_async(*({} for _ in range(min(BATCH_INSERT, sz.drain_jobs - i))))
        await checkpoint(dsn)
        target["n"] = sz.drain_jobs
        cpu.start()
        t0 = time.time()
        worker = await start_worker(app)
        try:
            d = await measure_drain(
                t0, sz.drain_jobs, sz.drain_timeout_s, all_started, lambda: unfinished_on(poll), cpu
            )
        finally:
            await stop_worker(worker)
        log(
            f"procrastinate drain run {run + 1}: {d['finished']}/{sz.drain_jobs}"
            f" in {d['seconds']:.2f}s"
            f" (handler saw all after {d['all_started_s']}s)"
        )
        drain_details.append(d)
        out.append(d["eps"])
    await poll.close()
    return out


async def due_now(app: App, sz: Sizes) -> list[float]:
    noop = app.tasks["noop"]
    lat: list[float] = []
    for i in range(sz.warmup + sz.due_now):
        job_id = await noop.defer_async()
        committed = time.time()
        await wait_started(started, start_signal, [job_id], DUE_NOW_TIMEOUT_S)
        if i >= sz.warmup:
            lat.append(started[job_id] - committed)
        await asyncio.sleep(DUE_NOW_GAP_S)
    return lat


async def future(app: App, dsn: str, sz: Sizes) -> list[float]:
    noop = app.tasks["noop"]
    base = time.time()
    ids = []
    for off in future_offsets(sz.future_jobs, sz.future_min_s, sz.future_max_s):
        at = dt.datetime.fromtimestamp(base + off, dt.UTC)
        ids.append(await noop.configure(schedule_at=at).defer_async())
    inserted = time.time() - base
    if inserted >= sz.future_min_s:
        log(f"warning: inserting the future jobs took {inserted:.2f}s")
    rows = await sql(
        dsn,
        "SELECT id, extract(epoch FROM scheduled_at)::float8 FROM procrastinate_jobs"
        " WHERE id = ANY(%s)",
        ids,
    )
    due = {r[0]: r[1] for r in rows}
    await wait_started(started, start_signal, ids, sz.future_max_s + FUTURE_GRACE_S)
    return [started[i] - due[i] for i in ids]


async def rss(dsn: str, sz: Sizes, app: App) -> float:
    await reset(dsn)
    noop = app.tasks["noop"]
    for i in range(0, sz.rss_jobs, BATCH_INSERT):  # the worker drains them once it is up
        await noop.batch_defer_async(*({} for _ in range(min(BATCH_INSERT, sz.rss_jobs - i))))
    proc = WorkerProcess([sys.executable, __file__, "--dsn", dsn, "--out", "-", "--worker-only"])
    try:
        await wait_finished(dsn, sz.drain_timeout_s, proc.alive)
        await asyncio.sleep(sz.rss_idle_s)
        return rss_mb(proc.pid)
    finally:
        err = proc.stop()
        if err.strip():
            log("worker subprocess stderr: " + err.strip()[-600:])


async def worker_only(dsn: str) -> None:
    app = make_app(dsn)
    async with app.open_async():
        await app.run_worker_async(concurrency=CONCURRENCY)  # stops on SIGTERM


async def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    # the app lives in this script on purpose (the worker subprocess re-imports it)
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    if args.worker_only:
        await worker_only(args.dsn)
        return
    sz = sizes(args.quick)
    app = make_app(args.dsn)
    async with app.open_async():
        await ensure_schema(app, args.dsn)
        log("procrastinate: A drain")
        drain_eps = await drain(app, args.dsn, sz)
        await reset(args.dsn)
        worker = await start_worker(app)
        try:
            await asyncio.sleep(0.5)  # let the worker register and LISTEN
            log("procrastinate: B due-now latency")
            b = await due_now(app, sz)
            log("procrastinate: C future lateness")
            c = await future(app, args.dsn, sz)
        finally:
            await stop_worker(worker)
        log("procrastinate: D worker RSS")
        rss_value = await rss(args.dsn, sz, app)
        await reset(args.dsn)
    write_result(
        args.out,
        {
            "system": "Procrastinate",
            "version": version("procrastinate"),
            "concurrency": f"1 worker process, concurrency={CONCURRENCY} (async sub-workers),"
            " LISTEN/NOTIFY, fetch_job_polling_interval=5 s (default)",
            "notes": "Worker in the driver's process (asyncio.run), psycopg 3 pool with"
            " default size; one job fetched per query; jobs kept after success (default)."
            " B: latency = handler start - return of defer_async (commit acknowledged),"
            f" {sz.warmup} warm-up iterations dropped. C: schedule_at, lateness = handler"
            " start - scheduled_at. D: worker alone in a subprocess, VmRSS after draining"
            f" {sz.rss_jobs} jobs and {sz.rss_idle_s:g} s idle." + drain_note(drain_details),
            "drain_eps": drain_eps,
            "drain_detail": drain_details,
            "cpu_ms_per_1k": cpu_per_1k(drain_details),
            "round": args.round,
            "due_now_ms": summary_ms(b, ("p50", "p90", "p99", "max")),
            "future_late_ms": summary_ms(c, ("p50", "p99", "max")),
            "rss_mb": rss_value,
            "quick": args.quick,
            "drain_jobs": sz.drain_jobs,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
