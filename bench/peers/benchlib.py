"""Shared pieces of the side-by-side harnesses (standard library only: it is imported both by
the bench virtualenv's harnesses and by nikita_bench.py, which runs in the project venv).

Workloads (identical for every system; DESIGN.md "Performance targets", issue 6):
  A  drain   N jobs due now inserted before the worker starts; time from worker start until the
             database shows every job finished; 3 runs, queue reset between runs.
  B  due-now 300 sequential "enqueue one (commit), wait until the handler starts"; latency is
             handler start (time.time() inside the handler) minus the moment the enqueue's
             commit was acknowledged to the driver (time.time() after the call returned).
  C  future  200 jobs due uniformly 1-20 s ahead (same seeded offsets for every system), all
             inserted first; lateness is handler start minus the due time stored in the row.
  D  RSS     the worker alone in a subprocess, after it drained a small batch and idled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
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


FULL = Sizes(
    drain_jobs=20_000,
    drain_runs=3,
    due_now=300,
    warmup=5,
    future_jobs=200,
    future_min_s=1.0,
    future_max_s=20.0,
    rss_jobs=2_000,
    rss_idle_s=2.0,
    drain_timeout_s=120.0,
)
QUICK = Sizes(
    drain_jobs=1_000,
    drain_runs=3,
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
    if len(result["drain_eps"]) != 3:
        raise ValueError("drain_eps must hold 3 runs")
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
) -> dict[str, Any]:
    """After a worker started at wall time t0 on n queued jobs: wait until the handler saw all
    n, then poll `unfinished()` every 10 ms until the database shows none left. Bounded by
    limit_s from t0: on timeout the rate counts the jobs finished so far (timed_out: true)."""
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
    return {
        "eps": round((n - left) / seconds, 1),
        "seconds": round(seconds, 3),
        "all_started_s": None if all_started_s is None else round(all_started_s, 3),
        "finished": n - left,
        "timed_out": timed_out,
    }


def drain_note(details: list[dict[str, Any]]) -> str:
    late = [i + 1 for i, d in enumerate(details) if d["timed_out"]]
    if not late:
        return ""
    return (
        f" DRAIN TIMED OUT in run(s) {late}: the rate there counts only the jobs finished"
        " within the limit."
    )
