"""PgQueuer 1.6 under the side-by-side workloads (see benchlib.py and docs/bench.md).

Run with the bench virtualenv:
    .bench-venv/bin/python bench/peers/pgqueuer_bench.py --dsn URL --out FILE.json [--quick]

Set-up as the PgQueuer docs say: schema by `Queries.install()` (what `pgq install` runs; an
existing installation is removed first with `Queries.uninstall()`), default durability
(logged tables); one `PgQueuer.from_asyncpg_connection(...)` (QueueManager + idle
SchedulerManager) on a dedicated asyncpg connection ("Always use a direct asyncpg connection
(not a pool) for the QueueManager"), producers on their own connection; `run(batch_size=25)`,
the value of the docs' performance-tuning guide for short jobs (the default is 10), with no
max_concurrent_tasks (unlimited, the default) and the default 30 s dequeue_timeout. The event
loop is uvloop, as `pgq run` uses when it is installed. The worker runs in the driver's
process and loop; workload D runs it alone in a subprocess.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import asyncpg
import uvloop
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
from pgqueuer import AsyncpgDriver, Job, PgQueuer, Queries

BATCH_SIZE = 25
BATCH_INSERT = 1000

drain_details: list[dict[str, Any]] = []
started: dict[int, float] = {}
due_at: dict[int, float] = {}
start_signal = asyncio.Event()
target = {"n": -1}
all_started = asyncio.Event()


worker_conns: dict[int, asyncpg.Connection] = {}


async def make_qm(dsn: str) -> PgQueuer:
    conn = await asyncpg.connect(dsn)
    qm = PgQueuer.from_asyncpg_connection(conn)
    worker_conns[id(qm)] = conn

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        now = time.time()
        started[job.id] = now
        due_at[job.id] = job.execute_after.timestamp()
        start_signal.set()
        if len(started) == target["n"]:
            all_started.set()

    return qm


async def install(q: Queries) -> None:
    if await q.schema_is_installed():
        log("pgqueuer: removing the previous installation")
        await q.uninstall()
    log("pgqueuer: installing schema")
    await q.install()


async def reset(q: Queries) -> None:
    await q.clear_queue()
    await q.clear_queue_log()
    await q.clear_statistics_log()
    started.clear()
    due_at.clear()
    all_started.clear()
    target["n"] = -1


async def checkpoint(conn: asyncpg.Connection) -> None:
    """Statistics as in a database in service (autoanalyze), then a checkpoint."""
    await conn.execute("ANALYZE pgqueuer")
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.PostgresError:
        pass  # not a superuser: skip


async def insert_due_now(q: Queries, n: int) -> None:
    for i in range(0, n, BATCH_INSERT):
        k = min(BATCH_INSERT, n - i)
        await q.enqueue(["noop"] * k, [None] * k, [0] * k)


async def unfinished(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pgqueuer"))


async def wait_finished(conn: asyncpg.Connection, limit_s: float, alive: Any = None) -> float:
    """Wall time at which the queue table is first empty (finished jobs are moved to the log)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("the worker subprocess exited")
        if await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0:
            return time.time()
        await asyncio.sleep(0.01)
    raise TimeoutError("jobs still unfinished")


def start_worker(qm: PgQueuer) -> asyncio.Task[None]:
    return asyncio.create_task(qm.run(batch_size=BATCH_SIZE))


async def stop_worker(qm: PgQueuer, task: asyncio.Task[None]) -> None:
    qm.shutdown.set()
    try:
        await asyncio.wait_for(task, 30)
    except TimeoutError:
        task.cancel()
    conn = worker_conns.pop(id(qm), None)
    if conn is not None:
        await conn.close()


async def drain(dsn: str, q: Queries, conn: asyncpg.Connection, sz: Sizes) -> list[float]:
    out: list[float] = []
    cpu = CpuMeter(int(await conn.fetchval("SELECT pg_backend_pid()")))
    for run in range(sz.drain_runs):
        await reset(q)
        await insert_due_now(q, sz.drain_jobs)
        await checkpoint(conn)
        target["n"] = sz.drain_jobs
        cpu.start()
        t0 = time.time()
        qm = await make_qm(dsn)  # a QueueManager runs once: a fresh one per run
        worker = start_worker(qm)
        try:
            d = await measure_drain(
                t0, sz.drain_jobs, sz.drain_timeout_s, all_started, lambda: unfinished(conn), cpu
            )
        finally:
            await stop_worker(qm, worker)
        log(
            f"pgqueuer drain run {run + 1}: {d['finished']}/{sz.drain_jobs}"
            f" in {d['seconds']:.2f}s"
            f" (handler saw all after {d['all_started_s']}s)"
        )
        drain_details.append(d)
        out.append(d["eps"])
    return out


async def due_now(q: Queries, sz: Sizes) -> list[float]:
    lat: list[float] = []
    for i in range(sz.warmup + sz.due_now):
        (job_id,) = await q.enqueue("noop", None)
        committed = time.time()
        await wait_started(started, start_signal, [job_id], DUE_NOW_TIMEOUT_S)
        if i >= sz.warmup:
            lat.append(started[job_id] - committed)
        await asyncio.sleep(DUE_NOW_GAP_S)
    return lat


async def future(q: Queries, sz: Sizes) -> list[float]:
    offsets = future_offsets(sz.future_jobs, sz.future_min_s, sz.future_max_s)
    # one batch insert; execute_after is relative to the database's now(), and the absolute due
    # time the row stores is what the handler reads from job.execute_after
    ids = await q.enqueue(
        ["noop"] * len(offsets),
        [None] * len(offsets),
        [0] * len(offsets),
        [timedelta(seconds=o) for o in offsets],
    )
    await wait_started(started, start_signal, ids, sz.future_max_s + FUTURE_GRACE_S)
    return [started[i] - due_at[i] for i in ids]


async def rss(dsn: str, q: Queries, conn: asyncpg.Connection, sz: Sizes) -> float:
    await reset(q)
    await insert_due_now(q, sz.rss_jobs)  # the worker drains them as soon as it is up
    proc = WorkerProcess([sys.executable, __file__, "--dsn", dsn, "--out", "-", "--worker-only"])
    try:
        await wait_finished(conn, sz.drain_timeout_s, proc.alive)
        await asyncio.sleep(sz.rss_idle_s)
        return rss_mb(proc.pid)
    finally:
        err = proc.stop()
        if err.strip():
            log("worker subprocess stderr: " + err.strip()[-600:])


async def worker_only(dsn: str) -> None:
    qm = await make_qm(dsn)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    await qm.run(batch_size=BATCH_SIZE)


async def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pgqueuer").setLevel(logging.WARNING)
    if args.worker_only:
        await worker_only(args.dsn)
        return
    sz = sizes(args.quick)
    conn = await asyncpg.connect(args.dsn)
    producer_conn = await asyncpg.connect(args.dsn)
    producer = Queries(AsyncpgDriver(producer_conn))
    if args.round <= 1 or not await producer.schema_is_installed():
        await install(producer)
    log("pgqueuer: A drain")
    drain_eps = await drain(args.dsn, producer, conn, sz)
    await reset(producer)
    qm = await make_qm(args.dsn)
    worker = start_worker(qm)
    try:
        await asyncio.sleep(0.5)  # let the QueueManager LISTEN
        log("pgqueuer: B due-now latency")
        b = await due_now(producer, sz)
        log("pgqueuer: C future lateness")
        c = await future(producer, sz)
    finally:
        await stop_worker(qm, worker)
    log("pgqueuer: D worker RSS")
    rss_value = await rss(args.dsn, producer, conn, sz)
    await reset(producer)
    result: dict[str, Any] = {
        "system": "PgQueuer",
        "version": version("pgqueuer"),
        "concurrency": f"1 QueueManager (1 process), batch_size={BATCH_SIZE},"
        " max_concurrent_tasks unlimited (default), LISTEN/NOTIFY, dequeue_timeout=30 s",
        "notes": "Worker in the driver's process (uvloop, as `pgq run`), dedicated asyncpg"
        " connection; durability 'durable' (default); finished = row gone from the queue"
        " table (status log buffer flushed). B: latency = handler start - return of"
        f" enqueue (commit acknowledged), {sz.warmup} warm-up iterations dropped."
        " C: execute_after (relative to the database clock), lateness = handler start -"
        " job.execute_after as stored. D: QueueManager alone in a subprocess, VmRSS after"
        f" draining {sz.rss_jobs} jobs and {sz.rss_idle_s:g} s idle." + drain_note(drain_details),
        "drain_eps": drain_eps,
        "drain_detail": drain_details,
        "cpu_ms_per_1k": cpu_per_1k(drain_details),
        "round": args.round,
        "due_now_ms": summary_ms(b, ("p50", "p90", "p99", "max")),
        "future_late_ms": summary_ms(c, ("p50", "p99", "max")),
        "rss_mb": rss_value,
        "quick": args.quick,
        "drain_jobs": sz.drain_jobs,
    }
    await conn.close()
    await producer_conn.close()
    write_result(args.out, result)


if __name__ == "__main__":
    uvloop.run(main())
