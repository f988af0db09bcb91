#!/usr/bin/env python3
"""Benchmark of the delivery shim (issue 5). Prints a markdown section.

    .venv/bin/python bench/shim_bench.py [--events 100000] [--users 25000] [--samples 500]

Uses DATABASE_URL's cluster (a superuser URL) or the embedded one (scripts/db.sh up); creates
a throwaway database, migrates it with scripts/migrate.sh, drops it at the end.

Measured:
- due now: commit of schedule_event (the client has its answer) -> transport called, in a shim
  whose transport records the call time (same host, same clock);
- future: transport called - scheduled_at, for events scheduled 0.3-3 s ahead;
- drain: 100,000 due events (4 per user, so per-user exclusivity is exercised) delivered by one
  `nikita-shim run` process with the no-op transport, logging at info to /dev/null;
  throughput = events / (last delivered_at - first delivered_at);
- resident memory (VmRSS, VmHWM) of that process after the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shim"))

SHIM_BIN = Path(sys.executable).parent / "nikita-shim"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def cluster_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    out = subprocess.run(
        [str(ROOT / "scripts" / "db.sh"), "up"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def make_database(admin: str) -> tuple[str, str]:
    name = f"nikita_bench_shim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    subprocess.run(
        [str(ROOT / "scripts" / "migrate.sh")],
        # no pg_cron jobs for a throwaway database (their names are cluster-wide)
        env={**os.environ, "DATABASE_URL": url, "NIKITA_CRON_FIND": "no"},
        check=True,
        capture_output=True,
    )
    return name, url


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---- latency: a shim in a child process with a recording transport --------------------------


def _latency_child(db_url: str, out_path: str, ready: mp.synchronize.Event) -> None:
    from nikita_shim import runtime
    from nikita_shim.config import load_config
    from nikita_shim.events import Outcome
    from nikita_shim.service import Shim

    calls: dict[str, float] = {}

    class Recording:
        platform = "telegram"
        name = "recording"

        async def start(self) -> None:
            return None

        async def close(self) -> None:
            return None

        async def deliver(self, event, ctx):  # type: ignore[no-untyped-def]
            calls[str(event.id)] = time.time()
            ctx.calling()
            return Outcome.delivered(None)

    env = {
        **{k: v for k, v in os.environ.items() if k.startswith("NIKITA_SHIM_")},
        "DATABASE_URL": db_url,
        "NIKITA_SHIM_LOG_LEVEL": "warning",
        "NIKITA_SHIM_SWEEP_INTERVAL": "0",
    }

    async def main() -> None:
        shim = Shim(load_config(env), transports={"telegram": Recording()})
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, shim.stop)
        task = asyncio.create_task(shim.run())
        await shim.ready.wait()
        ready.set()
        await task

    runtime.run(main(), load_config(env).event_loop)  # as `nikita-shim run`
    Path(out_path).write_text(json.dumps(calls))


def latency(db_url: str, samples: int) -> dict[str, float]:
    out_path = f"/tmp/nikita-shim-bench-{os.getpid()}.json"
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_latency_child, args=(db_url, out_path, ready))
    child.start()
    if not ready.wait(30):
        child.kill()
        raise SystemExit("latency shim did not start")
    committed: dict[str, float] = {}
    future_at: dict[str, float] = {}
    with psycopg.connect(db_url, autocommit=True) as c:
        users = [
            r[0]
            for r in c.execute(
                "INSERT INTO nikita.users (telegram_id) SELECT 900000000 + g"
                " FROM generate_series(1, %s) g RETURNING id",
                (samples * 2,),
            )
        ]
        stmt = (
            "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery',"
            ' \'{"text": "bench"}\'::jsonb)'
        )
        for _ in range(20):  # warm-up (prepared statements, caches)
            c.execute(stmt, (users[-1],))
            time.sleep(0.005)
        time.sleep(0.5)
        for u in users[:samples]:
            row = c.execute(stmt, (u,)).fetchone()
            committed[str(row[0])] = time.time()
            time.sleep(0.01)
        # future events, 0.3-3 s ahead, scheduled in a burst
        now = time.time()
        for u in users[samples : samples * 2]:
            at = now + random.uniform(0.3, 3.0)
            row = c.execute(
                "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery',"
                ' \'{"text": "later"}\'::jsonb, to_timestamp(%s))',
                (u, at),
            ).fetchone()
            future_at[str(row[0])] = at
        time.sleep(3.5)
    os.kill(child.pid, signal.SIGTERM)
    child.join(30)
    calls = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    due = [(calls[k] - t) * 1000 for k, t in committed.items() if k in calls]
    fut = [(calls[k] - t) * 1000 for k, t in future_at.items() if k in calls]
    return {
        "due_n": len(due),
        "due_p50": statistics.median(due),
        "due_p99": pct(due, 99),
        "due_max": max(due),
        "fut_n": len(fut),
        "fut_p50": statistics.median(fut),
        "fut_p99": pct(fut, 99),
        "fut_max": max(fut),
        "fut_min": min(fut),
    }


# ---- drain: the real CLI with the no-op transport -------------------------------------------


def rss(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def drain(db_url: str, events: int, users: int, batch: int) -> dict[str, float]:
    per_user = max(1, events // users)
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute("TRUNCATE nikita.scheduled_events")
        c.execute(
            "INSERT INTO nikita.users (telegram_id) SELECT g FROM generate_series(1, %s) g"
            " ON CONFLICT DO NOTHING",
            (users,),
        )
        t0 = time.perf_counter()
        c.execute(
            "INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content,"
            " scheduled_at)"
            " SELECT u.id, 'telegram', 'message_delivery',"
            " jsonb_build_object('chat_id', u.telegram_id, 'text', 'bench ' || n),"
            " now() - interval '1 minute' + n * interval '1 millisecond'"
            " FROM nikita.users u CROSS JOIN generate_series(1, %s) n"
            " WHERE u.telegram_id <= %s",
            (per_user, users),
        )
        insert_s = time.perf_counter() - t0
        c.execute("VACUUM ANALYZE nikita.scheduled_events")
        total = c.execute("SELECT count(*) FROM nikita.scheduled_events").fetchone()[0]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NIKITA_", "TELEGRAM_"))},
        **{k: v for k, v in os.environ.items() if k.startswith("NIKITA_SHIM_")},
        "DATABASE_URL": db_url,
        "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
        "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
        "NIKITA_SHIM_BATCH_SIZE": str(batch),
        "NIKITA_SHIM_SWEEP_INTERVAL": "0",
    }
    t_start = time.perf_counter()
    proc = subprocess.Popen(
        [str(SHIM_BIN), "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with psycopg.connect(db_url, autocommit=True) as c:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                left = c.execute(
                    "SELECT count(*) FROM nikita.scheduled_events"
                    " WHERE status IN ('pending', 'sending')"
                ).fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - t_start
            mem = rss(proc.pid)
            first, last, delivered = c.execute(
                "SELECT min(delivered_at), max(delivered_at), count(*)"
                " FROM nikita.scheduled_events WHERE status = 'delivered'"
            ).fetchone()
            # per user, delivery order = scheduling order (exclusivity: one at a time)
            disorder = c.execute(
                "SELECT count(*) FROM (SELECT delivered_at < lag(delivered_at) OVER w AS bad"
                " FROM nikita.scheduled_events WINDOW w AS (PARTITION BY user_id"
                " ORDER BY scheduled_at)) x WHERE bad"
            ).fetchone()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    span = (last - first).total_seconds()
    return {
        "events": total,
        "users": users,
        "per_user": per_user,
        "batch": batch,
        "insert_s": insert_s,
        "delivered": delivered,
        "span_s": span,
        "rate": delivered / span if span > 0 else float("inf"),
        "wall_s": wall,
        "wall_rate": delivered / wall,
        "disorder": disorder,
        "rss_mb": mem[0],
        "hwm_mb": mem[1],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=25_000)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-drain", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    admin = cluster_url()
    name, url = make_database(admin)
    try:
        lat = None if args.skip_latency else latency(url, args.samples)
        dr = None if args.skip_drain else drain(url, args.events, args.users, args.batch)
    finally:
        drop_database(admin, name)
    print("## Shim (issue 5)\n")
    print(
        f"Command: `.venv/bin/python bench/shim_bench.py` ({time.strftime('%Y-%m-%d')},"
        f" {os.cpu_count()} cores, PostgreSQL on the same host, fsync on).\n"
    )
    print("| measure | result | target |")
    print("|---|---|---|")
    if lat:
        print(f"| due now, commit → transport called, p50 | {lat['due_p50']:.2f} ms | ≤ 2 ms |")
        print(
            f"| due now, p99 (n={lat['due_n']}) | {lat['due_p99']:.2f} ms"
            f" (max {lat['due_max']:.1f}) | ≤ 4 ms |"
        )
        print(f"| future, called - scheduled_at, p50 | {lat['fut_p50']:.2f} ms | |")
        print(
            f"| future, p99 (n={lat['fut_n']}) | {lat['fut_p99']:.2f} ms"
            f" (min {lat['fut_min']:.2f}, max {lat['fut_max']:.1f}) | ≤ 20 ms |"
        )
    if dr:
        print(
            f"| drain {dr['events']:,} due events ({dr['users']:,} users x {dr['per_user']},"
            f" batch {dr['batch']}, no-op transport) | {dr['rate']:,.0f} events/s"
            f" (first→last delivered_at {dr['span_s']:.2f} s) | ≥ 20,000/s |"
        )
        print(
            f"| same, wall clock from process start | {dr['wall_rate']:,.0f} events/s"
            f" ({dr['wall_s']:.2f} s) | |"
        )
        print(f"| per-user order violations | {dr['disorder']} | 0 |")
        print(
            f"| shim RSS after the drain (peak) | {dr['rss_mb']:.1f} MB"
            f" ({dr['hwm_mb']:.1f} MB) | ≤ 60 MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
