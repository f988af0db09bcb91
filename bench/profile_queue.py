#!/usr/bin/env python3
"""Profile of the queue path (issue 14): where a drain's time and CPU go. Prints markdown.

    .venv/bin/python bench/profile_queue.py [--events 20000] [--rounds 1] [--top 15]
        [--backlog 20000] [--no-cprofile] [--env NAME=VALUE ...]

Uses DATABASE_URL's cluster (a superuser URL) or the embedded one (scripts/db.sh up); creates
a throwaway database, migrates it (scripts/migrate.sh), drops it at the end. Each drain: the
given number of due Telegram events, one per user (as bench/peers' workload A), delivered by
the real `nikita_shim.service.Shim` (its default config, the environment's NIKITA_SHIM_*
and --env override it) with a no-op transport, run by `nikita_shim.runtime.run` as
`nikita-shim run` does. Printed:
- the drain: events/s from the shim's start to the last completion, and the CPU it took per
  1,000 events, split: this process (the shim) and the cluster's postgres processes (from
  /proc: the postmaster's children alive, plus what it reaped meanwhile);
- cProfile of one more drain (slower, so its rate is not reported): the top lines by
  cumulative and by own time;
- pg_stat_statements of that drain (track = all, so the statements inside claim_events and
  complete_events show too): calls, mean and total time, rows. When the extension is not
  preloaded in the cluster, the section says so and the rest still runs;
- EXPLAIN (ANALYZE, BUFFERS) of claim_events' candidate statement (no voice cap) at a backlog
  of --backlog due events, 4 per user (rolled back).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shim"))

from nikita_shim import runtime  # noqa: E402
from nikita_shim.config import load_config  # noqa: E402
from nikita_shim.events import ClaimedEvent, Outcome  # noqa: E402
from nikita_shim.service import Shim  # noqa: E402
from nikita_shim.transports import DeliveryContext  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
UNFINISHED = "SELECT count(*) FROM nikita.scheduled_events WHERE status IN ('pending', 'sending')"


def cluster_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    out = subprocess.run(
        [str(ROOT / "scripts" / "db.sh"), "up"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def make_database(admin: str) -> tuple[str, str]:
    name = f"nikita_profile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    migrated = subprocess.run(
        [str(ROOT / "scripts" / "migrate.sh")],
        # no pg_cron jobs for a throwaway database (their names are cluster-wide)
        env={**os.environ, "DATABASE_URL": url, "NIKITA_CRON_FIND": "no"},
        capture_output=True,
        text=True,
    )
    if migrated.returncode != 0:
        drop_database(admin, name)
        raise SystemExit(f"migrate failed ({migrated.returncode}):\n{migrated.stderr[-2000:]}")
    return name, url


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---- CPU from /proc --------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def postmaster_pid(conn: psycopg.Connection[Any]) -> int | None:
    """The postmaster of the cluster `conn` is on (the parent of its backend), when that
    cluster runs on this machine and /proc shows it; else None."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        return int(_stat(backend)[1])
    except (OSError, ValueError, IndexError):
        return None


def cluster_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its live children and the children it reaped."""
    fields = _stat(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            f = _stat(int(entry))
        except (OSError, ValueError, IndexError):
            continue
        if int(f[1]) == postmaster:
            total += int(f[11]) + int(f[12])
    return total / CLK


# ---- the drain ---------------------------------------------------------------------------------


class CountingNoop:
    """The no-op transport; sets `done` when `target` events were handed to it."""

    name = "profile-noop"

    def __init__(self, platform: str, state: dict[str, Any]) -> None:
        self.platform = platform
        self.state = state

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        ctx.calling()
        self.state["n"] += 1
        if self.state["n"] >= self.state["target"]:
            self.state["done"].set()
        return Outcome.delivered(None)


def prepare(url: str, events: int) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("TRUNCATE nikita.scheduled_events")
        c.execute(
            "INSERT INTO nikita.users (telegram_id) SELECT 700000000 + g"
            " FROM generate_series(1, %s) g ON CONFLICT (telegram_id) DO NOTHING",
            (events,),
        )
        c.execute(
            "SELECT count(nikita.schedule_event(u.id, 'telegram', 'message_delivery',"
            ' \'{"text": "x"}\'::jsonb)) FROM (SELECT id FROM nikita.users'
            " WHERE telegram_id > 700000000 ORDER BY telegram_id LIMIT %s) u",
            (events,),
        )
        c.execute("ANALYZE nikita.scheduled_events")
        c.execute("CHECKPOINT")


def shim_env(url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("NIKITA_SHIM_")}
    env.update(
        {
            "DATABASE_URL": url,
            "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
            "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
            "NIKITA_SHIM_SWEEP_INTERVAL": "0",
        }
    )
    env.setdefault("NIKITA_SHIM_LOG_LEVEL", "warning")
    env.update(extra)
    return env


async def _drain(
    url: str, events: int, env: dict[str, str], postmaster: int | None
) -> dict[str, float]:
    state: dict[str, Any] = {"n": 0, "target": events, "done": asyncio.Event()}
    cfg = load_config(env)
    transports = {p: CountingNoop(p, state) for p in ("telegram", "voice")}
    pg0 = cluster_cpu(postmaster) if postmaster else None
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    shim = Shim(cfg, transports=transports)
    task = asyncio.create_task(shim.run())
    await asyncio.wait_for(state["done"].wait(), 600)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        while True:  # the last outcomes are written right after the last transport call
            cur = await c.execute(UNFINISHED)
            if (await cur.fetchone())[0] == 0:
                break
            await asyncio.sleep(0.002)
    seconds = time.perf_counter() - t0
    # CPU read while the shim's backends are alive (an exited backend's CPU shows in the
    # postmaster's cutime only once it is reaped)
    result = {
        "seconds": seconds,
        "eps": events / seconds,
        "shim_cpu_ms_per_1k": (time.process_time() - cpu0) * 1000 / events * 1000,
    }
    if postmaster and pg0 is not None:
        result["pg_cpu_ms_per_1k"] = (cluster_cpu(postmaster) - pg0) * 1000 / events * 1000
    shim.stop()
    await task
    return result


def drain(
    url: str,
    events: int,
    env: dict[str, str],
    postmaster: int | None,
    profile: bool,
    before: Any = None,
) -> tuple[dict[str, float], cProfile.Profile | None]:
    prepare(url, events)
    if before is not None:
        before()
    time.sleep(0.3)  # the preparing connection's backend exits and is reaped before we count
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    result = runtime.run(_drain(url, events, env, postmaster), load_config(env).event_loop)
    if prof:
        prof.disable()
    return result, prof


def profile_lines(prof: cProfile.Profile, key: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats(key).print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    head = [line for line in lines[:start] if "function calls" in line]
    return "\n".join([*(h.strip() for h in head), "", *lines[start : start + top + 1]])


QUEUE_FUNCTIONS = [str(ROOT / "functions" / f) for f in ("claim_events.sql", "complete_event.sql")]


def parse_variant(text: str) -> tuple[str, dict[str, str], str | None]:
    label, *parts = text.split(":")
    env: dict[str, str] = {}
    sql_file = None
    for part in parts:
        if part.startswith("sql="):
            sql_file = part[4:]
        elif part:
            env.update(item.split("=", 1) for item in part.split(","))
    return label, env, sql_file


def apply_sql(url: str, files: list[str]) -> None:
    for f in files:
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", f],
            check=True,
            capture_output=True,
        )


# ---- pg_stat_statements and EXPLAIN --------------------------------------------------------------


def stat_statements_ready(admin: str, url: str) -> str | None:
    """None when pg_stat_statements can be read in `url`'s database; else why not."""
    with psycopg.connect(admin, autocommit=True) as c:
        preload = c.execute("SHOW shared_preload_libraries").fetchone()[0]
        available = c.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'"
        ).fetchone()
    if not available:
        return "the pg_stat_statements extension is not installed on this cluster"
    if "pg_stat_statements" not in preload:
        return (
            "pg_stat_statements is not in this cluster's shared_preload_libraries"
            f" ({preload!r}); the embedded cluster has it (scripts/db.sh up), a DATABASE_URL"
            " cluster needs it added and a restart"
        )
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute(
            sql.SQL("ALTER DATABASE {} SET pg_stat_statements.track = 'all'").format(
                sql.Identifier(c.info.dbname)
            )
        )
    return None


def reset_statements(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
            " WHERE datname = current_database()), 0)"
        )


def top_statements(url: str, limit: int = 12) -> str:
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 1),"
            " rows, regexp_replace(query, '\\s+', ' ', 'g')"
            " FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            "   AND query !~* 'pg_stat_statements|^(TRUNCATE|ANALYZE|CHECKPOINT|INSERT INTO"
            " nikita.users)'"
            " ORDER BY total_exec_time DESC LIMIT %s",
            (limit,),
        ).fetchall()
    out = ["| calls | mean ms | total ms | rows | statement |", "|---:|---:|---:|---:|---|"]
    for calls, mean, total, nrows, query in rows:
        text = query if len(query) <= 110 else query[:107] + "..."
        out.append(f"| {calls:,} | {mean} | {total} | {nrows:,} | `{text.replace('|', '/')}` |")
    return "\n".join(out)


def candidate_sql() -> str:
    """The candidate statement of claim_events (no voice cap), as the function runs it, with
    its variables as literals: read from the installed function so that it never drifts."""
    src = (ROOT / "functions" / "claim_events.sql").read_text()
    start = src.index("        SELECT v_ids || coalesce(")
    end = src.index(") AS p;", start) + len(") AS p")
    body = src[start:end]
    # from its FROM on: the select list (with INTO) is PL/pgSQL's
    return "SELECT pg_catalog.array_agg(p.id)\n" + body[body.index("        FROM (") :]


def explain_claim(url: str, backlog: int, batch: int) -> str:
    users = max(1, backlog // 4)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("TRUNCATE nikita.scheduled_events")
        c.execute(
            "INSERT INTO nikita.users (telegram_id) SELECT 800000000 + g"
            " FROM generate_series(1, %s) g ON CONFLICT (telegram_id) DO NOTHING",
            (users,),
        )
        c.execute(
            "INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content,"
            " scheduled_at) SELECT u.id, 'telegram', 'message_delivery',"
            " jsonb_build_object('chat_id', u.telegram_id, 'text', 'x'),"
            " now() - interval '1 minute' + n * interval '1 millisecond'"
            " FROM (SELECT id, telegram_id FROM nikita.users WHERE telegram_id > 800000000"
            " ORDER BY telegram_id LIMIT %s) u CROSS JOIN generate_series(1, 4) n",
            (users,),
        )
        c.execute("VACUUM ANALYZE nikita.scheduled_events")
        # one claim beforehand, so that the candidates step over users in flight as in a drain
        c.execute("SELECT count(*) FROM nikita.claim_events('profile', %s)", (batch,))
        body = candidate_sql()
        body = (
            body.replace("p_max_voice IS NULL OR ", "true OR ")
            .replace("e.user_id = ANY(v_users)", "false")
            .replace("v_oldest", "(now() - interval '24 hours')")
            .replace("p_max - pg_catalog.cardinality(v_ids)", str(batch))
        )
        with c.transaction(force_rollback=True):
            c.execute("SET LOCAL jit = off")
            c.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            plan = [r[0] for r in c.execute("EXPLAIN (ANALYZE, BUFFERS) " + body).fetchall()]
    keep = [
        line
        for line in plan
        if "->" in line
        or line.lstrip().startswith(("Buffers", "Planning Time", "Execution Time", "Aggregate"))
    ]
    return "\n".join(keep[:30])


# ---- main ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3, help="timed drains (median printed)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--backlog", type=int, default=20_000)
    ap.add_argument("--no-cprofile", action="store_true")
    ap.add_argument("--no-explain", action="store_true")
    ap.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the shim (repeatable)"
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL[:NAME=VALUE,...][:sql=FILE]",
        help="A/B: the timed rounds alternate between the variants (each with these settings"
        " on top of --env; FILE: SQL applied before each of its drains, the checkout's"
        " functions re-applied before the others')",
    )
    args = ap.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    variants = [parse_variant(v) for v in args.variant] or [("default", {}, None)]
    admin = cluster_url()
    name, url = make_database(admin)
    try:
        env = shim_env(url, extra)
        cfg = load_config(env)
        why_not = stat_statements_ready(admin, url)
        with psycopg.connect(url, autocommit=True) as c:
            postmaster = postmaster_pid(c)
        # warm-up drain (prepared statements, caches), then the timed ones, alternating
        drain(url, min(args.events, 2000), env, postmaster, False)
        results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
        uses_sql = any(f for _, _, f in variants)
        for _ in range(args.rounds):
            for label, venv, sql_file in variants:
                if uses_sql:
                    apply_sql(url, [sql_file] if sql_file else QUEUE_FUNCTIONS)
                res, _ = drain(url, args.events, {**env, **venv}, postmaster, False)
                results[label].append(res)
        if uses_sql:
            apply_sql(url, QUEUE_FUNCTIONS)
        prof = None
        if not args.no_cprofile:
            reset = (lambda: reset_statements(url)) if why_not is None else None
            _, prof = drain(url, args.events, env, postmaster, True, reset)
        stmts = top_statements(url) if why_not is None and prof is not None else None
        plan = None if args.no_explain else explain_claim(url, args.backlog, cfg.batch_size)
    finally:
        drop_database(admin, name)

    def med(runs: list[dict[str, float]], key: str) -> str:
        values = [r[key] for r in runs if key in r]
        if not values:
            return "n/a"
        lo, hi = min(values), max(values)
        m = statistics.median(values)
        return f"{m:,.0f}" + (f" ({lo:,.0f}-{hi:,.0f})" if len(values) > 1 else "")

    loop = runtime.resolve(cfg.event_loop)
    print("## Profile of the queue path (bench/profile_queue.py)\n")
    print(
        f"Command: `.venv/bin/python bench/profile_queue.py --events {args.events}"
        f" --rounds {args.rounds}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}). Shim: batch"
        f" {cfg.batch_size}, concurrency {cfg.concurrency}, pool {cfg.pool_size}, event loop"
        f" {loop}, Telegram durability {cfg.telegram_durability}; {args.events:,} due events,"
        " one per user, no-op transport.\n"
    )
    print("| drain | events/s | shim CPU per 1,000 | PostgreSQL CPU per 1,000 |")
    print("|---|---:|---:|---:|")
    for label, venv, sql_file in variants:
        runs = results[label]
        what = ", ".join([f"{k}={v}" for k, v in venv.items()] + ([sql_file] if sql_file else []))
        print(
            f"| {label}{' (' + what + ')' if what else ''}: {args.events:,} events, median of"
            f" {len(runs)} | {med(runs, 'eps')} | {med(runs, 'shim_cpu_ms_per_1k')} ms |"
            f" {med(runs, 'pg_cpu_ms_per_1k')} ms |"
        )
    if postmaster is None:
        print("\nPostgreSQL CPU: n/a (the cluster's processes are not visible in /proc here).")
    if prof is not None:
        print(f"\ncProfile of one drain, top {args.top} by cumulative time:\n")
        print("```\n" + profile_lines(prof, "cumulative", args.top) + "\n```\n")
        print(f"Top {args.top} by own time:\n")
        print("```\n" + profile_lines(prof, "tottime", args.top) + "\n```\n")
    if why_not is not None:
        print(f"\npg_stat_statements: not available ({why_not}).\n")
    elif stmts is not None:
        print("pg_stat_statements of that drain (track = all: the functions' own statements")
        print("show beside the shim's calls), by total time:\n")
        print(stmts + "\n")
    if plan is not None:
        print(
            f"EXPLAIN (ANALYZE, BUFFERS) of claim_events' candidate statement, batch"
            f" {cfg.batch_size}, backlog {args.backlog:,} due events (4 per user, one batch"
            " in flight):\n"
        )
        print("```\n" + plan + "\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
