"""Render the side-by-side results as markdown (standard library only).

    python3 bench/peers/render.py [--dsn URL] [--out FILE.md] RESULT.json ...

Reads the harnesses' JSON files (one per system and round: nikita_bench, gw_bench.cjs,
pgqueuer_bench, procrastinate_bench; polling_model once), groups them by system and prints:
machine facts (with --dsn: PostgreSQL version and settings, via psql), one table with the
systems side by side where every measured figure is the median over the rounds with min-max,
a verdict column per nikita-tasks configuration against issue 14's targets (computed from the
same files), our ratio to each system, and each system's set-up and notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ORDER = [
    "nikita-tasks",
    "nikita-tasks (async commit)",
    "Graphile Worker (perf config)",
    "Graphile Worker (default config)",
    "PgQueuer",
    "Procrastinate",
    "pg_cron polling 1 min",
    "pg_cron polling 5 min",
]
OURS = ("nikita-tasks", "nikita-tasks (async commit)")
SHORT = {
    "nikita-tasks": "nikita-tasks",
    "nikita-tasks (async commit)": "nikita-tasks (async commit)",
    "Graphile Worker (perf config)": "GW perf",
    "Graphile Worker (default config)": "GW default",
}
SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
    "wal_level",
)
TIMES = "\u00d7"  # multiplication sign
DASH = "\u2013"  # en dash
FUTURE_P99_MS = 20.0
RSS_MB = 60.0


def _cpu(part: str) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        c = r.get("cpu_ms_per_1k")
        if not c:
            return None
        if part == "total":
            return float(c["worker"]) + float(c["pg"])
        return float(c[part])

    return get


def _drain(r: dict[str, Any]) -> float | None:
    v = r.get("drain_eps") or []
    return statistics.median(v) if v else None


@dataclass(frozen=True)
class Fig:
    key: str
    label: str
    get: Callable[[dict[str, Any]], float | None]
    unit: str
    higher_is_better: bool


FIGS = [
    Fig("drain", "A drain, jobs/s", _drain, "eps", True),
    Fig(
        "b50",
        "B due now, enqueue commit → task start, p50",
        lambda r: r["due_now_ms"].get("p50"),
        "ms",
        False,
    ),
    Fig("b99", "B due now, p99", lambda r: r["due_now_ms"].get("p99"), "ms", False),
    Fig("bmax", "B due now, max", lambda r: r["due_now_ms"].get("max"), "ms", False),
    Fig("c50", "C future, lateness p50", lambda r: r["future_late_ms"].get("p50"), "ms", False),
    Fig("c99", "C future, lateness p99", lambda r: r["future_late_ms"].get("p99"), "ms", False),
    Fig("cpu_w", "CPU per 1,000 jobs (A), worker process", _cpu("worker"), "cpums", False),
    Fig("cpu_pg", "CPU per 1,000 jobs (A), PostgreSQL", _cpu("pg"), "cpums", False),
    Fig("cpu", "CPU per 1,000 jobs (A), worker + PostgreSQL", _cpu("total"), "cpums", False),
    Fig("rss", "D idle RSS", lambda r: r.get("rss_mb"), "MB", False),
]
FIG = {f.key: f for f in FIGS}


@dataclass(frozen=True)
class Agg:
    med: float
    lo: float
    hi: float
    n: int


def aggregate(rounds: list[dict[str, Any]], fig: Fig) -> Agg | None:
    vals = [v for v in (fig.get(r) for r in rounds) if v is not None]
    if not vals:
        return None
    return Agg(statistics.median(vals), min(vals), max(vals), len(vals))


def fmt_num(x: float, digits: int) -> str:
    return f"{x:,.{digits}f}"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "eps":
        if value < 10:
            return f"{value:.3g}/s"
        return f"{fmt_num(value, 0)}/s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "cpums":
        return f"{fmt_num(value, 0)} ms" if value >= 100 else f"{value:.1f} ms"
    # milliseconds: switch to s / min for the polling design's figures
    if value >= 120_000:
        return f"{value / 60_000:.1f} min"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{fmt_num(value, 0)} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def cell(a: Agg | None, unit: str) -> str:
    if a is None:
        return "n/a"
    if a.n == 1 or a.lo == a.hi:
        return fmt(a.med, unit)
    # the range without repeating the unit: "2.10 ms (1.90-2.40)" (an en dash)
    lo, hi = fmt(a.lo, unit), fmt(a.hi, unit)
    for suffix in (" ms", " MB", "/s", " s", " min"):
        if lo.endswith(suffix) and hi.endswith(suffix):
            lo, hi = lo[: -len(suffix)], hi[: -len(suffix)]
            break
    return f"{fmt(a.med, unit)} ({lo}{DASH}{hi})"


def ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> str:
    """How many times better ours is (>1: better, <1: worse)."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return "n/a"
    x = ours / theirs if higher_is_better else theirs / ours
    if x >= 100:
        return f"{fmt_num(x, 0)}{TIMES}"
    if x >= 10:
        return f"{x:.1f}{TIMES}"
    return f"{x:.2f}{TIMES}"


def is_peer(system: str) -> bool:
    return system not in OURS and not system.startswith("pg_cron polling")


def best_peer(aggs: dict[str, dict[str, Agg | None]], fig: Fig) -> tuple[str, float] | None:
    cands = [(s, a[fig.key]) for s, a in aggs.items() if is_peer(s) and a.get(fig.key)]
    if not cands:
        return None
    pick = max if fig.higher_is_better else min
    s, a = pick(cands, key=lambda c: c[1].med)  # type: ignore[union-attr]
    return s, a.med  # type: ignore[union-attr]


def verdict(aggs: dict[str, dict[str, Agg | None]], ours: str, key: str) -> str:
    """Issue 14's target for one line: met, or missed by how many times, with the figures."""
    fig = FIG[key]
    mine = aggs[ours].get(key)
    if mine is None:
        return "n/a"
    v = mine.med
    if key in ("c99", "rss"):
        limit = FUTURE_P99_MS if key == "c99" else RSS_MB
        text = f"{fmt(v, fig.unit)} vs ≤ {fmt(limit, fig.unit)}"
        return f"met ({text})" if v <= limit else f"**missed** by {v / limit:.2f}{TIMES} ({text})"
    best = best_peer(aggs, fig)
    if best is None:
        return "n/a (no peer measured)"
    peer, b = best
    op = "≥" if fig.higher_is_better else "≤"
    text = f"{fmt(v, fig.unit)} vs {op} {fmt(b, fig.unit)} ({SHORT.get(peer, peer)})"
    ok = v >= b if fig.higher_is_better else v <= b
    if ok:
        return f"met ({text})"
    off = (b / v if v > 0 else float("inf")) if fig.higher_is_better else v / b
    return f"**missed** by {off:.2f}{TIMES} ({text})"


TARGETS = [
    ("drain", "drain ≥ best peer"),
    ("b50", "due-now p50 ≤ best peer"),
    ("b99", "due-now p99 ≤ best peer"),
    ("cpu", "CPU per 1,000 jobs (worker + PostgreSQL) ≤ best peer"),
    ("c99", f"future lateness p99 ≤ {FUTURE_P99_MS:g} ms"),
    ("rss", f"idle RSS ≤ {RSS_MB:g} MB"),
]
TARGET_KEYS = {k for k, _ in TARGETS}


def machine_facts(dsn: str | None) -> list[str]:
    lines = [f"- cores (nproc): {os.cpu_count()}"]
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), None)
        if model:
            lines.append(f"- CPU: {model}")
        with open("/proc/meminfo") as f:
            kb = int(next(ln for ln in f if ln.startswith("MemTotal")).split()[1])
        lines.append(f"- memory: {kb / 1024 / 1024:.1f} GiB")
    except (OSError, StopIteration, ValueError):
        pass
    lines.append(f"- OS: {platform.platform()}; Python {platform.python_version()}")
    if dsn:
        query = "SELECT version()" + "".join(
            f" UNION ALL SELECT current_setting('{s}')" for s in SETTINGS
        )
        try:
            out = subprocess.run(
                ["psql", "-X", "-A", "-t", "-d", dsn, "-c", query],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.splitlines()
            lines.append(f"- PostgreSQL: {out[0].split(' on ')[0]} (same host, over TCP 127.0.0.1)")
            lines.append(
                "- settings: "
                + ", ".join(f"{k}={v}" for k, v in zip(SETTINGS, out[1:], strict=False))
            )
        except (OSError, subprocess.SubprocessError, IndexError) as exc:
            lines.append(f"- PostgreSQL: (could not query: {exc})")
    return lines


def load(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in paths:
        try:
            with open(p) as f:
                r = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"render: skipping {p}: {exc}", file=sys.stderr)
            continue
        out.setdefault(r["system"], []).append(r)
    for rounds in out.values():
        rounds.sort(key=lambda r: r.get("round", 1))
    return out


def title(r: dict[str, Any]) -> str:
    v = str(r.get("version", ""))
    name = SHORT.get(r["system"], r["system"])
    if r["system"].startswith("Graphile Worker"):
        return f"{name} ({v})" if v[:1].isdigit() else name
    return f"{name} {v}" if v[:1].isdigit() else name


def render(results: dict[str, list[dict[str, Any]]], dsn: str | None) -> str:
    systems = [s for s in ORDER if s in results] + sorted(s for s in results if s not in ORDER)
    ours = [s for s in OURS if s in results]
    measured = [s for s in systems if not s.startswith("pg_cron polling")]
    n_rounds = max((len(results[s]) for s in measured), default=0)
    aggs = {s: {f.key: aggregate(results[s], f) for f in FIGS} for s in systems}
    md: list[str] = []
    if any(r.get("quick") for rs in results.values() for r in rs):
        md.append("> **Smoke run (`--quick`)**: reduced counts; not comparable with the targets.\n")
    md.append("Machine:\n")
    md += machine_facts(dsn)
    md.append("")
    first = results[systems[0]][0]
    md.append(
        f"Every measured figure is the median of {n_rounds} alternating rounds (each round runs"
        f" every system once, the order rotated by one system per round) with min{DASH}max in"
        " brackets; the pg_cron polling columns are computed. Workload A drains"
        f" {first.get('drain_jobs', 20_000):,} jobs per round; the CPU lines are measured"
        " during A from /proc. Verdicts: issue 14's targets, from the medians of this run;"
        " best peer = the best median among the measured peers (Graphile Worker, PgQueuer,"
        " Procrastinate).\n"
    )
    head = ["workload"] + [title(results[s][0]) for s in systems]
    head += [f"verdict: {SHORT[s]}" for s in ours]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for f in FIGS:
        n = ""
        if ours and f.key.startswith("b"):
            n = f" (n={results[ours[0]][0]['due_now_ms'].get('n')}/round)"
        elif ours and f.key.startswith("c") and not f.key.startswith("cpu"):
            n = f" (n={results[ours[0]][0]['future_late_ms'].get('n')}/round)"
        cells = [cell(aggs[s][f.key], f.unit) for s in systems]
        cells += [verdict(aggs, s, f.key) if f.key in TARGET_KEYS else "" for s in ours]
        md.append(f"| {f.label}{n} | " + " | ".join(cells) + " |")
    md.append("")
    for s in ours:
        md.append(f"Issue 14 targets for **{s}** (this run):\n")
        for key, text in TARGETS:
            md.append(f"- {text}: {verdict(aggs, s, key)}")
        once = [r.get("exactly_once") for r in results[s] if "exactly_once" in r]
        if once:
            md.append(
                "- exactly-once in the drain (one transport call per event): "
                + ("held in every round" if all(once) else "**VIOLATED**")
            )
        md.append("")
    others = [s for s in systems if s not in OURS]
    if ours and others:
        md.append(
            f"{ours[0]} relative to each (median over median; how many times better, below"
            f" 1{TIMES} = worse):\n"
        )
        md.append("| workload | " + " | ".join(SHORT.get(s, s) for s in others) + " |")
        md.append("|" + "---|" * (len(others) + 1))
        for f in FIGS:
            mine = aggs[ours[0]][f.key]
            cells = []
            for s in others:
                theirs = aggs[s][f.key]
                cells.append(
                    ratio(
                        mine.med if mine else None,
                        theirs.med if theirs else None,
                        f.higher_is_better,
                    )
                )
            md.append(f"| {f.label} | " + " | ".join(cells) + " |")
        md.append("")
    md.append("Concurrency and set-up of each system:\n")
    for s in systems:
        r = results[s][0]
        loads = [x.get("loadavg_1m_start_end") for x in results[s]]
        loads = [x for x in loads if x]
        load_txt = (
            " Load average (1 min) start/end per round: "
            + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in loads)
            + "."
            if loads
            else ""
        )
        late = [
            str(x.get("round", i + 1))
            for i, x in enumerate(results[s])
            if any(d.get("timed_out") for d in x.get("drain_detail") or [])
        ]
        late_txt = (
            f" Drain bound reached in round(s) {', '.join(late)}: those rates count the jobs"
            " finished within the bound."
            if late
            else ""
        )
        notes = str(r.get("notes", "")).split(" DRAIN TIMED OUT")[0]  # per round: see late_txt
        md.append(
            f"- **{s}** {r.get('version', '')}: {r.get('concurrency', '')}."
            f" {notes}{late_txt}{load_txt}"
        )
    md.append("")
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--dsn", help="a database URL of the cluster measured (machine facts)")
    ap.add_argument("--out", help="write the markdown here as well as to stdout")
    args = ap.parse_args()
    results = load(args.files)
    if not results:
        print("render: no results", file=sys.stderr)
        return 1
    text = render(results, args.dsn)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
