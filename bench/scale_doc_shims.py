#!/usr/bin/env python3
"""One shim against two draining the same queue (docs/scaling.md). Prints a markdown table.

    .venv/bin/python bench/scale_doc_shims.py [--events 20000] [--users 5000] [--rounds 3]

Uses DATABASE_URL's cluster (a superuser URL) or the embedded one; a throwaway database,
migrated, dropped at the end (bench/shim_bench.py's helpers). Each round queues EVENTS due
Telegram events (EVENTS/USERS per user, so per-user exclusivity is exercised across the
shims), starts 1 or 2 `nikita-shim run` processes with the no-op transport (the shim's default
configuration otherwise) and waits until nothing is pending or sending. Rounds alternate 1, 2,
1, 2, ... in the same minutes, since the machine's load moves. Throughput = events / (last
delivered_at - first delivered_at). Checked every round: every event delivered, none claimed
more than once (attempts = 1), per-user order kept.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shim_bench  # same folder: the database helpers


def make_database(admin: str) -> tuple[str, str]:
    """shim_bench.make_database, but migrated with NIKITA_CRON_FIND=no: pg_cron (in the
    cluster's cron database) must not schedule jobs into a database that is dropped at the
    end; they would outlive it and block the next migrate of the project database."""
    name = f"nikita_bench_shims_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    subprocess.run(
        [str(shim_bench.ROOT / "scripts" / "migrate.sh")],
        env={**os.environ, "DATABASE_URL": url, "NIKITA_CRON_FIND": "no"},
        check=True,
        capture_output=True,
    )
    return name, url


def queue(db_url: str, events: int, users: int) -> int:
    per_user = max(1, events // users)
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute("TRUNCATE nikita.scheduled_events")
        c.execute(
            "INSERT INTO nikita.users (telegram_id) SELECT g FROM generate_series(1, %s) g"
            " ON CONFLICT DO NOTHING",
            (users,),
        )
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
        c.execute("VACUUM ANALYZE nikita.scheduled_events")
        return c.execute("SELECT count(*) FROM nikita.scheduled_events").fetchone()[0]


def drain(db_url: str, shims: int) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NIKITA_", "TELEGRAM_"))},
        "DATABASE_URL": db_url,
        "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
        "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
        "NIKITA_SHIM_SWEEP_INTERVAL": "0",
        "NIKITA_SHIM_LOG_LEVEL": "warning",
    }
    load = os.getloadavg()[0]
    procs = [
        subprocess.Popen(
            [str(shim_bench.SHIM_BIN), "run"],
            env={**env, "NIKITA_SHIM_WORKER_ID": f"bench-{i}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(shims)
    ]
    try:
        with psycopg.connect(db_url, autocommit=True) as c:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                left = c.execute(
                    "SELECT count(*) FROM nikita.scheduled_events"
                    " WHERE status IN ('pending', 'sending')"
                ).fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.1)
            first, last, delivered = c.execute(
                "SELECT min(delivered_at), max(delivered_at), count(*)"
                " FROM nikita.scheduled_events WHERE status = 'delivered'"
            ).fetchone()
            disorder = c.execute(
                "SELECT count(*) FROM (SELECT delivered_at < lag(delivered_at) OVER w AS bad"
                " FROM nikita.scheduled_events WINDOW w AS (PARTITION BY user_id"
                " ORDER BY scheduled_at, seq)) x WHERE bad"
            ).fetchone()[0]
            twice = c.execute(
                "SELECT count(*) FROM nikita.scheduled_events WHERE attempts > 1"
            ).fetchone()[0]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    span = (last - first).total_seconds()
    return {
        "delivered": delivered,
        "rate": delivered / span if span > 0 else float("inf"),
        "disorder": disorder,
        "twice": twice,
        "load": load,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    base = shim_bench.cluster_url()
    admin = psycopg.conninfo.make_conninfo(base, dbname="postgres")
    name, url = make_database(admin)
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        for _ in range(args.rounds):
            for shims in (1, 2):
                total = queue(url, args.events, args.users)
                r = drain(url, shims)
                if r["delivered"] != total or r["disorder"] or r["twice"]:
                    print(f"shims bench: bad round {shims} shim(s): {r}", file=sys.stderr)
                    return 1
                runs[shims].append(r)
                print(f"shims bench: {shims} shim(s): {r['rate']:.0f} events/s", file=sys.stderr)
    finally:
        shim_bench.drop_database(admin, name)
    stamp = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    print(
        f"Command: `.venv/bin/python bench/scale_doc_shims.py --events {args.events}"
        f" --users {args.users} --rounds {args.rounds}` ({stamp},"
        f" {os.cpu_count()} cores, PostgreSQL on the same host)."
    )
    print()
    print(
        "| shims | drain, events/s (median, min-max) | 1-minute load at each round"
        " | order violations | claimed more than once |"
    )
    print("|---:|---:|---|---:|---:|")
    for shims, rs in runs.items():
        rates = [r["rate"] for r in rs]
        loads = ", ".join(f"{r['load']:.2f}" for r in rs)
        print(
            f"| {shims} | {statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
            f" | {loads}"
            f" | {sum(r['disorder'] for r in rs)} | {sum(r['twice'] for r in rs)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
