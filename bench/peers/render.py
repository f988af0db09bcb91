"""Render the side-by-side results as markdown (standard library only).

    python3 bench/peers/render.py [--dsn URL] [--out FILE.md] RESULT.json ...

Reads the harnesses' JSON files (nikita_bench, procrastinate_bench, pgqueuer_bench,
polling_model), prints machine facts (with --dsn: PostgreSQL version and settings, via psql),
one table of figures (rows = workloads, columns = systems, plus DESIGN.md's target for ours),
one table of our ratio to each system, each system's concurrency and the notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Any

ORDER = [
    "nikita-tasks",
    "Procrastinate",
    "PgQueuer",
    "pg_cron polling 1 min",
    "pg_cron polling 5 min",
]
OURS = "nikita-tasks"
SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
    "wal_level",
)

# (label, getter, unit, higher_is_better, DESIGN.md target for ours: (op, value) or None)
Getter = Any
TIMES = "\u00d7"  # multiplication sign
DASH = "\u2013"  # en dash


def drain_median(r: dict[str, Any]) -> float | None:
    v = r.get("drain_eps") or []
    return statistics.median(v) if v else None


ROWS: list[tuple[str, Getter, str, bool, tuple[str, float] | None]] = [
    ("A drain, events/s (median of 3)", drain_median, "eps", True, (">=", 20_000.0)),
    ("B due now, p50", lambda r: r["due_now_ms"].get("p50"), "ms", False, ("<=", 2.0)),
    ("B due now, p90", lambda r: r["due_now_ms"].get("p90"), "ms", False, None),
    ("B due now, p99", lambda r: r["due_now_ms"].get("p99"), "ms", False, ("<=", 4.0)),
    ("B due now, max", lambda r: r["due_now_ms"].get("max"), "ms", False, None),
    ("C future, lateness p50", lambda r: r["future_late_ms"].get("p50"), "ms", False, None),
    ("C future, lateness p99", lambda r: r["future_late_ms"].get("p99"), "ms", False, ("<=", 20.0)),
    ("C future, lateness max", lambda r: r["future_late_ms"].get("max"), "ms", False, None),
    ("D worker RSS", lambda r: r.get("rss_mb"), "MB", False, ("<=", 60.0)),
]


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


def drain_cell(r: dict[str, Any]) -> str:
    v = r.get("drain_eps") or []
    if not v:
        return "n/a"
    med = fmt(statistics.median(v), "eps")
    if min(v) == max(v):
        return med
    return f"{med} ({fmt(min(v), 'eps')}{DASH}{fmt(max(v), 'eps')})"


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


def target_cell(value: float | None, target: tuple[str, float] | None, unit: str) -> str:
    if target is None:
        return ""
    op, limit = target
    t = f"{'≥' if op == '>=' else '≤'} {fmt(limit, unit)}"
    if value is None:
        return t
    if (value >= limit) if op == ">=" else (value <= limit):
        return f"{t}: met"
    off = limit / value if op == ">=" else value / limit
    return f"{t}: **missed** (by {off:.2f}{TIMES})"


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


def load(paths: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in paths:
        try:
            with open(p) as f:
                r = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"render: skipping {p}: {exc}", file=sys.stderr)
            continue
        out[r["system"]] = r
    return out


def title(r: dict[str, Any]) -> str:
    v = str(r.get("version", ""))
    return f"{r['system']} {v}" if v[:1].isdigit() else r["system"]


def render(results: dict[str, dict[str, Any]], dsn: str | None) -> str:
    systems = [s for s in ORDER if s in results] + sorted(s for s in results if s not in ORDER)
    others = [s for s in systems if s != OURS]
    ours = results.get(OURS)
    md: list[str] = []
    if any(r.get("quick") for r in results.values()):
        md.append("> **Smoke run (`--quick`)**: reduced counts; not comparable with the targets.\n")
    md.append("Machine:\n")
    md += machine_facts(dsn)
    md.append("")
    head = ["workload"] + [title(results[s]) for s in systems]
    if ours:
        head.insert(2, "DESIGN target (ours)")
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for label, get, unit, _hib, target in ROWS:
        n = ""
        if ours and label.startswith("B "):
            n = f" (n={ours['due_now_ms'].get('n')})"
        elif ours and label.startswith("C "):
            n = f" (n={ours['future_late_ms'].get('n')})"
        cells = []
        for s in systems:
            r = results[s]
            cells.append(drain_cell(r) if label.startswith("A ") else fmt(get(r), unit))
        if ours:
            cells.insert(1, target_cell(get(ours), target, unit))
        md.append(f"| {label}{n} | " + " | ".join(cells) + " |")
    if ours:
        md.append(
            "\nDESIGN.md states the drain target for 100,000 events with one shim; workload A"
            f" drains {ours.get('drain_jobs', 20_000):,} (one per user)."
        )
    md.append("")
    if ours and others:
        md.append(
            f"nikita-tasks relative to each (how many times better; below 1{TIMES} = worse):\n"
        )
        md.append("| workload | " + " | ".join(others) + " |")
        md.append("|" + "---|" * (len(others) + 1))
        for label, get, _unit, hib, _t in ROWS:
            cells = [ratio(get(ours), get(results[s]), hib) for s in others]
            md.append(f"| {label} | " + " | ".join(cells) + " |")
        md.append("")
    md.append("Concurrency and set-up of each system:\n")
    for s in systems:
        r = results[s]
        load = r.get("loadavg_1m_start_end")
        load_txt = (
            f" Load average (1 min) at start/end: {load[0]:.2f}/{load[1]:.2f}." if load else ""
        )
        md.append(
            f"- **{s}** {r.get('version', '')}: {r.get('concurrency', '')}."
            f" {r.get('notes', '')}{load_txt}"
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
