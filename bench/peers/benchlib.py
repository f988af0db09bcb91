"""Shared pieces of the side-by-side harnesses (standard library only: it is imported both by
the bench virtualenv's harnesses and by nikita_bench.py, which runs in the project venv).

Workloads (identical for every system; DESIGN.md "Performance targets", issues 6 and 14). One
harness call is one round; bench/peers/run.sh runs at least 3 rounds, alternating the systems,
and render.py reports each figure as the median over the rounds with min-max.
  A  drain   N jobs due now inserted before the worker starts; time from worker start until the
             database shows every job finished (one drain per round, queue reset before it).
             CPU per 1,000 jobs is measured over the same window from /proc: the worker
             process (getrusage of the driver process, which runs the worker) and every
             process of the PostgreSQL cluster (postmaster, its children, and the reaped
             children's time), the driver's own polling backend left out.
  B  due-now sequential "enqueue one (commit), wait until the handler starts"; latency is
             handler start (time.time() inside the handler) minus the moment the enqueue's
             commit was acknowledged to the driver (time.time() after the call returned).
  C  future  jobs due uniformly 1-10 s ahead (same seeded offsets for every system), all
             inserted first; lateness is handler start minus the due time stored in the row.
  D  RSS     the worker alone in a subprocess, after it drained a small batch and idled.

`python3 benchlib.py sizes [--quick]` prints the sizes and the future offsets as JSON (the
Node.js harness gw_bench.cjs reads them, so every system gets the same numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

# the machine's load when the harness started (other work on a 2-core box skews every figure)
START_LOADAVG = os.getloadavg()

SCHEMA_KEYS = (
    "system",
    "version",
    "concurrency",
    "notes",
    "drain_eps",
    "due_now_ms",
    "future_late_ms",
    "rss_mb",
    "cpu_ms_per_1k",
)


@dataclass(frozen=True)
class Sizes:
    drain_jobs: int
    drain_runs: int
    due_now: int
    warmup: int
    future_jobs: int
    future_min_s: float
    future_max_s: float
    rss_jobs: int
    rss_idle_s: float
    drain_timeout_s: float


# per round (run.sh runs >= 3 rounds): B 200 and C 150 samples in 1-10 s instead of the former
# single run's 300 and 200 in 1-20 s, so that 3 rounds of 6 systems stay near 12 minutes
FULL = Sizes(
    drain_jobs=20_000,
    drain_runs=1,
    due_now=200,
    warmup=5,
    future_jobs=150,
    future_min_s=1.0,
    future_max_s=10.0,
    rss_jobs=2_000,
    rss_idle_s=2.0,
    drain_timeout_s=60.0,  # bounds the slow peers' drains (GW default, Procrastinate) under load
)
QUICK = Sizes(
    drain_jobs=1_000,
    drain_runs=1,
    due_now=30,
    warmup=3,
    future_jobs=20,
    future_min_s=1.0,
    future_max_s=3.0,
    rss_jobs=200,
    rss_idle_s=1.0,
    drain_timeout_s=60.0,
)
# pause between two due-now iterations, so one job's completion does not overlap the next insert
DUE_NOW_GAP_S = 0.005
# each due-now iteration and the future workload are bounded in time
DUE_NOW_TIMEOUT_S = 10.0
FUTURE_GRACE_S = 15.0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dsn", required=True, help="database URL the harness may fill and reset")
    p.add_argument("--out", required=True, help="where to write the result JSON")
    p.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    p.add_argument("--round", type=int, default=1, help="round number (recorded; set-up in 1)")
    p.add_argument(
        "--worker-only",
        action="store_true",
        help=argparse.SUPPRESS,  # internal: run only the worker (RSS subprocess)
    )
    return p


def sizes(quick: bool) -> Sizes:
    return QUICK if quick else FULL


def future_offsets(n: int, low: float, high: float) -> list[float]:
    """Seconds ahead for workload C: uniform in [low, high], the same for every system."""
    rng = random.Random(20261128)
    return [rng.uniform(low, high) for _ in range(n)]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def summary_ms(values_s: Sequence[float], keys: Sequence[str]) -> dict[str, Any]:
    """Seconds in, a {p50, p90, p99, max, n} dict in milliseconds out (only `keys`)."""
    ms = sorted(v * 1000.0 for v in values_s)
    out: dict[str, Any] = {}
    for k in keys:
        if k == "max":
            out[k] = round(ms[-1], 3) if ms else None
        else:
            out[k] = round(percentile(ms, int(k[1:]) / 100.0), 3) if ms else None
    out["n"] = len(ms)
    return out


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (VmRSS of /proc/<pid>/status, what psutil reports)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write_result(path: str, result: dict[str, Any]) -> None:
    missing = [k for k in SCHEMA_KEYS if k not in result]
    if missing:
        raise ValueError(f"result lacks {missing}")
    if not result["drain_eps"]:
        raise ValueError("drain_eps must hold at least one run")
    ordered = {k: result[k] for k in SCHEMA_KEYS}
    for k, v in result.items():  # extra keys (details) go after the contract keys
        if k not in ordered:
            ordered[k] = v
    ordered.setdefault("loadavg_1m_start_end", [START_LOADAVG[0], os.getloadavg()[0]])
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(ordered, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path}", file=sys.stderr)


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_stat(pid: int) -> tuple[int, int, int, int, int]:
    """(ppid, utime, stime, cutime, cstime) of /proc/<pid>/stat, times in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def cluster_cpu_s(postmaster: int, exclude: frozenset[int]) -> float:
    """CPU seconds used so far by a PostgreSQL cluster: the postmaster, its live children
    (backends and background processes) except `exclude`, and its reaped children (the
    postmaster's cutime/cstime), so a backend that exits between two samples still counts."""
    _pp, ut, st, cut, cst = proc_stat(postmaster)
    ticks = ut + st + cut + cst
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in exclude:
            continue
        try:
            ppid, ut, st, _cut, _cst = proc_stat(int(name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if ppid == postmaster:
            ticks += ut + st
    return ticks / CLK_TCK


def self_cpu_s() -> float:
    """CPU seconds (user + system, all threads) of this process: the driver runs the worker."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class CpuMeter:
    """CPU of the worker process and of the PostgreSQL cluster over one drain window.

    `poll_backend` is the pid (pg_backend_pid()) of the driver's polling connection: its
    parent is the cluster's postmaster (same host), and its own CPU is left out (the polling is
    the harness's, not the system's)."""

    def __init__(self, poll_backend: int) -> None:
        self.exclude = frozenset({poll_backend})
        self.postmaster = proc_stat(poll_backend)[0]
        self._t0: tuple[float, float] | None = None

    def start(self) -> None:
        self._t0 = (self_cpu_s(), cluster_cpu_s(self.postmaster, self.exclude))

    def stop(self, jobs: int) -> dict[str, Any]:
        assert self._t0 is not None
        w = self_cpu_s() - self._t0[0]
        pg = cluster_cpu_s(self.postmaster, self.exclude) - self._t0[1]
        k = max(jobs, 1) / 1000.0
        return {
            "worker": round(w * 1000.0 / k, 1),
            "pg": round(pg * 1000.0 / k, 1),
            "worker_s": round(w, 3),
            "pg_s": round(pg, 3),
            "jobs": jobs,
        }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class WorkerProcess:
    """A worker subprocess for workload D, stopped by pid (SIGTERM, then SIGKILL). Its stderr
    goes to a temporary file (a pipe nobody reads could fill up and stall the worker)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> str:
        """Stop the worker; return the tail of its stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._err.closed:
            return ""
        self._err.seek(0)
        err = self._err.read().decode(errors="replace")
        self._err.close()
        return err[-2000:]


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll a cheap synchronous predicate until true or timeout (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


async def wait_started(
    started: dict[Any, float], signal: asyncio.Event, ids: Sequence[Any], limit_s: float
) -> None:
    """Wait until every id in `ids` has a handler-start time; `signal` is set by the handler.
    Bounded by `limit_s` (TimeoutError)."""
    deadline = time.monotonic() + limit_s
    pending = list(ids)
    while True:
        signal.clear()
        pending = [i for i in pending if i not in started]
        if not pending:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{len(pending)} job(s) never started within {limit_s:g}s")
        try:
            await asyncio.wait_for(signal.wait(), remaining)
        except TimeoutError:
            pass


async def measure_drain(
    t0: float,
    n: int,
    limit_s: float,
    all_started: asyncio.Event,
    unfinished: Callable[[], Awaitable[int]],
    cpu: CpuMeter | None = None,
) -> dict[str, Any]:
    """After a worker started at wall time t0 on n queued jobs: wait until the handler saw all
    n, then poll `unfinished()` every 10 ms until the database shows none left. Bounded by
    limit_s from t0: on timeout the rate counts the jobs finished so far (timed_out: true).
    `cpu`, started by the caller just before the worker, is read at the same moment."""
    deadline = time.monotonic() + max(0.0, limit_s - (time.time() - t0))
    all_started_s = None
    try:
        await asyncio.wait_for(all_started.wait(), max(0.0, deadline - time.monotonic()))
        all_started_s = time.time() - t0
    except TimeoutError:
        pass
    timed_out = False
    while True:
        left = await unfinished()
        now = time.time()
        if left == 0:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        await asyncio.sleep(0.01)
    seconds = now - t0
    cpu_use = cpu.stop(n - left) if cpu is not None else None
    return {
        "cpu": cpu_use,
        "eps": round((n - left) / seconds, 1),
        "seconds": round(seconds, 3),
        "all_started_s": None if all_started_s is None else round(all_started_s, 3),
        "finished": n - left,
        "timed_out": timed_out,
    }


def cpu_per_1k(details: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The round's CPU figure (median over its drain runs; one run per round by default)."""
    runs = [d["cpu"] for d in details if d.get("cpu")]
    if not runs:
        return None
    return {k: statistics.median(r[k] for r in runs) for k in ("worker", "pg")}


def drain_note(details: list[dict[str, Any]]) -> str:
    late = [i + 1 for i, d in enumerate(details) if d["timed_out"]]
    if not late:
        return ""
    return (
        f" DRAIN TIMED OUT in run(s) {late}: the rate there counts only the jobs finished"
        " within the limit."
    )


def _dump_sizes(argv: list[str]) -> None:
    quick = "--quick" in argv
    sz = sizes(quick)
    print(
        json.dumps(
            {
                **sz.__dict__,
                "future_offsets": future_offsets(sz.future_jobs, sz.future_min_s, sz.future_max_s),
                "due_now_gap_s": DUE_NOW_GAP_S,
                "due_now_timeout_s": DUE_NOW_TIMEOUT_S,
                "future_grace_s": FUTURE_GRACE_S,
                "quick": quick,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["sizes"]:
        _dump_sizes(sys.argv[2:])
    else:
        sys.exit("usage: python3 benchlib.py sizes [--quick]")
