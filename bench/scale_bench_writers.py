"""Decay at scale beside the app: the driver of bench/scale_bench.sh.

Four sessions (``--writers``) write players the way the game does on each message
(yangsi7/nikita: ``UserRepository.get_by_telegram_id_for_update`` then the scoring service's
score update and its ``score_history`` row, event_type ``conversation``, one transaction):

    BEGIN; SET LOCAL statement_timeout = '10s';
    SELECT ... FROM nikita.users WHERE telegram_id = $1 FOR UPDATE;
    UPDATE nikita.users SET relationship_score = $2, last_interaction_at = now() WHERE id = $3;
    INSERT INTO nikita.score_history (... 'conversation' ...);
    COMMIT;

each at ``--rate`` messages per second (paced, not flat out: the game is bounded by its
LLM calls and Telegram, not by the database). Phase one (``--baseline`` seconds): the writers
alone. Phase two: ``CALL nikita.run_job('decay')`` on its own autocommit connection, exactly
the statement pg_cron sends, while the writers go on; a monitor samples pg_stat_activity every
10 ms for the decay session's longest open transaction. Deadlocks (40P01) and serialization
failures (40001) are caught and counted, never retried silently. Prints a markdown section.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import errors

DEADLOCK = "40P01"
SERIALIZATION = "40001"


@dataclass
class WriterStats:
    """What one writer saw in one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    deadlocks: int = 0
    serialization_failures: int = 0
    other_errors: dict[str, int] = field(default_factory=dict)
    not_found: int = 0


@dataclass
class Shared:
    """State shared by the threads of one run (passed explicitly, never global)."""

    max_telegram_id: int
    phase: str = "baseline"
    stop: threading.Event = field(default_factory=threading.Event)


def one_message(conn: psycopg.Connection, telegram_id: int, rng: random.Random) -> bool:
    """One message's writes, as the game makes them; False when no such player."""
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = '10s'")
        row = conn.execute(
            "SELECT id, relationship_score, chapter FROM nikita.users"
            " WHERE telegram_id = %s FOR UPDATE",
            (telegram_id,),
        ).fetchone()
        if row is None:
            return False
        user_id, score, chapter = row
        delta = round(rng.uniform(-1.5, 2.0), 2)
        new_score = max(0, min(100, float(score) + delta))
        conn.execute(
            "UPDATE nikita.users SET relationship_score = %s, last_interaction_at = now()"
            " WHERE id = %s",
            (new_score, user_id),
        )
        conn.execute(
            "INSERT INTO nikita.score_history"
            " (user_id, score, delta, chapter, event_type, event_details)"
            " VALUES (%s, %s, %s, %s, 'conversation', %s)",
            (
                user_id,
                new_score,
                round(new_score - float(score), 2),
                chapter,
                json.dumps(
                    {
                        "score_before": str(score),
                        "score_after": f"{new_score:.2f}",
                        "engagement_state": "in_zone",
                        "deltas": {"intimacy": "0.5", "passion": "0.2", "trust": "0.1"},
                    }
                ),
            ),
        )
    return True


def writer(url: str, rate: float, seed: int, shared: Shared, stats: dict[str, WriterStats]) -> None:
    """Write at `rate` messages per second until told to stop; latency per phase."""
    rng = random.Random(seed)
    period = 1.0 / rate
    with psycopg.connect(url, autocommit=True) as conn:
        nxt = time.perf_counter()
        while not shared.stop.is_set():
            nxt += period
            st = stats.setdefault(shared.phase, WriterStats())
            t0 = time.perf_counter()
            try:
                if not one_message(conn, rng.randint(1, shared.max_telegram_id), rng):
                    st.not_found += 1
                    continue
                st.latencies_ms.append((time.perf_counter() - t0) * 1000)
            except errors.DeadlockDetected:
                st.deadlocks += 1
            except errors.SerializationFailure:
                st.serialization_failures += 1
            except psycopg.Error as exc:
                state = exc.sqlstate or "?"
                if state == DEADLOCK:
                    st.deadlocks += 1
                elif state == SERIALIZATION:
                    st.serialization_failures += 1
                else:
                    st.other_errors[state] = st.other_errors.get(state, 0) + 1
            delay = nxt - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.perf_counter()  # behind: do not burst to catch up


def monitor(url: str, pid_box: list[int], shared: Shared, out: dict[str, float]) -> None:
    """Sample the decay session's open transaction every 10 ms; keep the longest."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not shared.stop.is_set():
            if pid_box:
                row = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - xact_start) * 1000"
                    " FROM pg_stat_activity WHERE pid = %s AND xact_start IS NOT NULL",
                    (pid_box[0],),
                ).fetchone()
                if row and row[0] is not None:
                    out["longest_xact_ms"] = max(out.get("longest_xact_ms", 0.0), float(row[0]))
            time.sleep(0.01)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def merged(per_writer: list[dict[str, WriterStats]], phase: str) -> WriterStats:
    """One phase's stats over all writers."""
    m = WriterStats()
    for w in per_writer:
        st = w.get(phase)
        if st is None:
            continue
        m.latencies_ms += st.latencies_ms
        m.deadlocks += st.deadlocks
        m.serialization_failures += st.serialization_failures
        m.not_found += st.not_found
        for k, v in st.other_errors.items():
            m.other_errors[k] = m.other_errors.get(k, 0) + v
    return m


def main() -> None:
    """Run both phases and print the markdown section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--players", type=int, required=True)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=50.0, help="messages/s per writer")
    ap.add_argument("--baseline", type=float, default=60.0, help="seconds without decay")
    args = ap.parse_args()

    shared = Shared(max_telegram_id=args.players)
    per_writer: list[dict[str, WriterStats]] = [{} for _ in range(args.writers)]
    threads = [
        threading.Thread(
            target=writer, args=(args.url, args.rate, 1000 + i, shared, per_writer[i]), daemon=True
        )
        for i in range(args.writers)
    ]
    pid_box: list[int] = []
    mon_out: dict[str, float] = {}
    mon = threading.Thread(target=monitor, args=(args.url, pid_box, shared, mon_out), daemon=True)
    for t in threads:
        t.start()
    mon.start()
    time.sleep(args.baseline)

    with psycopg.connect(args.url, autocommit=True) as conn:
        pid_box.append(conn.info.backend_pid)
        wal0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        shared.phase = "decay"
        t0 = time.perf_counter()
        conn.execute("CALL nikita.run_job('decay')")
        wall = time.perf_counter() - t0
        shared.phase = "after"
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (wal0,)).fetchone()[
            0
        ]
        job = conn.execute(
            "SELECT status, duration_ms, result FROM nikita.job_executions"
            " WHERE job_name = 'decay' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    shared.stop.set()
    for t in threads:
        t.join(timeout=15)
    mon.join(timeout=5)

    status, duration_ms, result = job
    base = merged(per_writer, "baseline")
    during = merged(per_writer, "decay")
    cols = ["", "writes", "p50", "p99", "max", "deadlocks (40P01)"]
    cols += ["serialization failures (40001)", "other errors"]
    print("| " + " | ".join(cols) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, st in (("app writes without decay", base), ("app writes during decay", during)):
        print(
            f"| {name} | {len(st.latencies_ms):,} | {pct(st.latencies_ms, 50):.1f} ms"
            f" | {pct(st.latencies_ms, 99):.1f} ms"
            f" | {max(st.latencies_ms or [float('nan')]):.0f} ms"
            f" | {st.deadlocks} | {st.serialization_failures}"
            f" | {json.dumps(st.other_errors) if st.other_errors else 0} |"
        )
    print()
    print(
        f"Decay: run_job status **{status}**, {duration_ms / 1000:.1f} s (wall clock of the CALL"
        f" {wall:.1f} s); decayed {int(result['decayed']):,} of {int(result['due']):,} due"
        f" ({args.players:,} players), {result['batches']} batches, game overs"
        f" {result['game_overs']}, skipped {result['skipped']}; longest batch (max_batch_ms,"
        f" COMMIT not included) {float(result['max_batch_ms']):.0f} ms; longest open transaction"
        f" of the decay session seen by a 10 ms sampler {mon_out.get('longest_xact_ms', 0):.0f} ms;"
        f" WAL {wal / 2**30:.2f} GiB."
    )
    print()
    print(
        f"Writers: {args.writers} sessions, {args.rate:g} messages/s each (paced), a uniformly"
        f" random player per message; without decay = the {args.baseline:g} s before the CALL."
        f" One run, not a median."
    )


if __name__ == "__main__":
    main()
