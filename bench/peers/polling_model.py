"""The polling design nikita-tasks replaces, computed for the side-by-side workloads.

    python3 bench/peers/polling_model.py --period 300 --out polling_5min.json
    python3 bench/peers/polling_model.py --period 60 --out polling_1min.json

The old design: a pg_cron job every `period` seconds (pg_cron 1.4 has minute granularity, so
1 and 5 minutes are its finest settings) calls the app, which selects up to 50 due events
(`... WHERE scheduled_at <= now() ORDER BY scheduled_at LIMIT 50`) and delivers them. Nothing
runs between ticks. The figures are computed, not measured, and are lower bounds: the tick's
own run time (HTTP round trip, 50 sequential deliveries) is taken as zero.

  A  drain: at most 50 events per tick, so the throughput ceiling is 50 / period events/s
     (20,000 events take 400 ticks: 6.7 h at 1 min, 33.3 h at 5 min).
  B  due-now: an event enqueued at a uniformly random moment waits for the next tick, so its
     latency is Uniform(0, period): p50 = period/2, p90 = 0.9 period, p99 = 0.99 period, max =
     period (the supremum). (Run literally back to back, each enqueue would follow the tick that
     delivered the previous one and wait a whole period.) The 50 cap never binds here.
  C  future: the same seeded due times as the other harnesses (150 due 1-10 s after insertion);
     the tick phase relative to the insertion is uniform, so lateness is averaged over
     PHASES equally spaced phases (a quadrature of the exact expectation): each tick delivers
     the 50 oldest due events; lateness = delivering tick - due time.
"""

from __future__ import annotations

import argparse
import sys

from benchlib import FULL, QUICK, future_offsets, percentile, write_result

BATCH = 50
PHASES = 3000


def future_lateness(offsets: list[float], period: float, batch: int, phases: int) -> list[float]:
    """Lateness (s) of every (job, phase) pair; ticks at phase + k*period, k >= 0."""
    due = sorted(offsets)
    out: list[float] = []
    for p in range(phases):
        phase = period * p / phases
        tick = phase
        i = 0
        while i < len(due):
            while tick < due[i]:
                tick += period
            n = 0  # the tick takes up to `batch` events that are due by then, oldest first
            while i < len(due) and due[i] <= tick and n < batch:
                out.append(tick - due[i])
                i += 1
                n += 1
            tick += period
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--period", type=float, required=True, help="tick period in seconds")
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=BATCH, help="events per tick (LIMIT)")
    ap.add_argument("--quick", action="store_true", help="the quick workload's counts")
    args = ap.parse_args()
    sz = QUICK if args.quick else FULL
    period = args.period
    label = f"{period / 60:g} min" if period >= 60 else f"{period:g} s"

    ceiling = args.batch / period
    offsets = future_offsets(sz.future_jobs, sz.future_min_s, sz.future_max_s)
    late = sorted(x * 1000.0 for x in future_lateness(offsets, period, args.batch, PHASES))
    p_ms = period * 1000.0
    ticks = -(-sz.drain_jobs // args.batch)
    write_result(
        args.out,
        {
            "system": f"pg_cron polling {label}",
            "version": "model (pg_cron 1.4 schedule)",
            "concurrency": f"1 pg_cron job every {label}, up to {args.batch} events per tick",
            "notes": "Computed, not measured; lower bounds (a tick's own run time taken as 0)."
            f" A: ceiling {args.batch}/tick = {ceiling:.4g} events/s; {sz.drain_jobs} events"
            f" need {ticks} ticks ({ticks * period / 3600:.1f} h). B: exact quantiles of"
            f" Uniform(0, {period:g} s) (random enqueue moment), max = the period; n = the"
            " workload size. C: the same seeded due times as the other systems, tick phase"
            f" uniform (quadrature over {PHASES} phases), {args.batch} oldest due per tick."
            " D: no worker process (the schedule runs inside PostgreSQL and the app).",
            "drain_eps": [round(ceiling, 4)],
            "due_now_ms": {
                "p50": round(0.5 * p_ms, 3),
                "p90": round(0.9 * p_ms, 3),
                "p99": round(0.99 * p_ms, 3),
                "max": round(p_ms, 3),
                "n": sz.due_now,
            },
            "future_late_ms": {
                "p50": round(percentile(late, 0.5), 3),
                "p99": round(percentile(late, 0.99), 3),
                "max": round(late[-1], 3),
                "n": sz.future_jobs,
            },
            "rss_mb": None,
            "cpu_ms_per_1k": None,  # not modelled (the tick's own work is taken as zero)
            "loadavg_1m_start_end": None,  # computed: the machine's load plays no part
            "period_s": period,
            "batch": args.batch,
            "quick": args.quick,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
