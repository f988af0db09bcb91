"""`nikita-shim status` (tables) and `nikita-shim check` (exit code for monitoring)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from . import queries

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
EXIT_SCHEMA_VERSION = 4  # migrated by another package version: run `nikita-shim migrate`


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_table(title: str, rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return f"{title}\n  (no rows)\n"
    headers = list(rows[0].keys())
    cells = [[_cell(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r.get(h)) for r in rows) for h in headers]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [title, line(headers), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out) + "\n"


def _is_number(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, int | float) and not isinstance(value, bool))
        or (type(value).__name__ == "Decimal")
    )


def problems(
    queue: Sequence[dict[str, Any]], jobs: Sequence[dict[str, Any]], max_lag: float
) -> list[str]:
    """Why the queue or the jobs are unhealthy (empty: healthy)."""
    found: list[str] = []
    for row in queue:
        lag = row.get("oldest_due_lag_s")
        if lag is not None and float(lag) > max_lag:
            found.append(
                f"queue {row.get('platform')}: oldest due event waiting {float(lag):.0f}s "
                f"(> {max_lag:g}s): is the shim running?"
            )
    for row in jobs:
        name = row.get("job_name")
        if row.get("overdue"):
            found.append(f"job {name}: overdue (last run {_cell(row.get('last_run_at'))})")
        failure, success = row.get("last_failure_at"), row.get("last_success_at")
        if failure is not None and (success is None or failure > success):
            found.append(f"job {name}: last run failed at {_cell(failure)}")
    return found


def render_status(queue: Sequence[dict[str, Any]], jobs: Sequence[dict[str, Any]]) -> str:
    return render_table("Queue", queue) + "\n" + render_table("Jobs", jobs)


def render_json(queue: Sequence[dict[str, Any]], jobs: Sequence[dict[str, Any]]) -> str:
    return json.dumps({"queue": list(queue), "jobs": list(jobs)}, default=str, indent=2)


async def fetch_health(
    url: str, connect_timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of nikita.queue_health and nikita.job_health, by column name."""
    async with await AsyncConnection.connect(
        url, autocommit=True, connect_timeout=max(1, round(connect_timeout)), row_factory=dict_row
    ) as conn:
        queue = await (await conn.execute(queries.QUEUE_HEALTH)).fetchall()
        jobs = await (await conn.execute(queries.JOB_HEALTH)).fetchall()
    return list(queue), list(jobs)
