"""`nikita-shim events ...` and `nikita-shim jobs ...`: the operator API (functions/admin_*.sql).

Every command is one call of an SQL function granted to nikita_ops (the SQL is in queries.py);
the database validates the input (ids, times, names) and its SQLSTATE decides the exit code:

    0  done (a list may be empty)
    1  nothing done: no such event, not retryable (not failed, dedupe key in use), nothing to
       cancel, a job run that failed or was skipped
    2  usage or configuration: bad option, bad value (SQLSTATE class 22), no DATABASE_URL
    3  database unreachable, operator API missing (not migrated) or not granted (42501)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

# SQLSTATEs meaning "that event/job cannot be acted on": exit 1
_NOTHING_STATES = {"P0002", "55000", "23505"}

_EVENT_COLUMNS = (
    "id",
    "user_id",
    "event_type",
    "platform",
    "status",
    "order_time",
    "scheduled_at",
    "attempts",
    "error_count",
    "last_error",
)
_RUN_COLUMNS = ("id", "job_name", "status", "started_at", "duration_ms", "result", "error")


def add_commands(sub: Any) -> None:
    """The `events` and `jobs` subcommands, on cli.py's subparsers."""
    events = sub.add_parser("events", help="find, show, retry and cancel events (nikita_ops)")
    ev = events.add_subparsers(dest="action", required=True)
    ls = ev.add_parser("list", help="events, newest first")
    ls.add_argument("--user", help="player id (uuid)")
    ls.add_argument("--status", help="pending, sending, delivered, failed or cancelled")
    ls.add_argument("--type", dest="event_type", help="event type, e.g. message_delivery")
    _add_range(ls)
    ls.add_argument("--with-text", action="store_true", help="show the messages themselves")
    show = ev.add_parser("show", help="one event with its error history")
    show.add_argument("id")
    show.add_argument("--with-text", action="store_true", help="show the message itself")
    retry = ev.add_parser("retry", help="a failed event back to pending, attempts reset")
    retry.add_argument("id")
    retry.add_argument("--at", help="due at this time (ISO 8601; default now)")
    cancel = ev.add_parser("cancel", help="cancel the pending events of a player and/or type")
    cancel.add_argument("--user", help="player id (uuid)")
    cancel.add_argument("--type", dest="event_type", help="event type")

    jobs = sub.add_parser("jobs", help="list jobs, their run history, run one now (nikita_ops)")
    jb = jobs.add_subparsers(dest="action", required=True)
    jb.add_parser("list", help="the job catalog")
    hist = jb.add_parser("history", help="job runs, newest first")
    hist.add_argument("--job", help="job name")
    hist.add_argument("--status", help="running, completed, failed or skipped")
    _add_range(hist)
    run = jb.add_parser("run", help="run a job now, in one transaction")
    run.add_argument("name")
    for p in (ls, show, retry, cancel, *jb.choices.values()):
        p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _add_range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="from this time (ISO 8601, inclusive)")
    p.add_argument("--until", help="to this time (ISO 8601, exclusive)")
    p.add_argument("--limit", type=int, default=50, help="at most this many rows (1-1000)")


def _query(args: argparse.Namespace) -> tuple[str, tuple[Any, ...]]:
    from . import queries as q

    match (args.command, args.action):
        case ("events", "list"):
            return q.FIND_EVENTS, (
                args.user,
                args.status,
                args.event_type,
                args.since,
                args.until,
                args.limit,
                args.with_text,
            )
        case ("events", "show"):
            return q.SHOW_EVENT, (args.id, args.with_text)
        case ("events", "retry"):
            return q.RETRY_EVENT, (args.id, args.at)
        case ("events", "cancel"):
            return q.CANCEL_PENDING_EVENTS, (args.user, args.event_type)
        case ("jobs", "list"):
            return q.LIST_JOBS, ()
        case ("jobs", "history"):
            return q.LIST_JOB_RUNS, (args.job, args.status, args.since, args.until, args.limit)
        case _:
            return q.RUN_JOB_NOW, (args.name,)


def _exit_code(args: argparse.Namespace, rows: Sequence[dict[str, Any]]) -> int:
    if args.command == "events" and args.action == "cancel":
        return EXIT_OK if rows and rows[0]["cancelled"] else EXIT_NOTHING
    if args.command == "jobs" and args.action == "run":
        return EXIT_OK if rows and rows[0]["status"] == "completed" else EXIT_NOTHING
    return EXIT_OK


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _clip(value: Any, width: int = 60) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if isinstance(value, str) and len(value) > width:
        return value[: width - 1] + "…"
    return value


def render(args: argparse.Namespace, rows: Sequence[dict[str, Any]]) -> str:
    """The rows as JSON (--json) or as a table for people."""
    from .health import render_table

    if args.json:
        one = args.action in ("show", "retry", "cancel", "run")
        return json.dumps(rows[0] if one else list(rows), default=_json_default, indent=2) + "\n"
    if args.action == "show":
        row = dict(rows[0])
        errors = row.pop("errors") or []
        keys = list(dict.fromkeys(k for e in errors for k in e))  # entries differ in keys
        errors = [{k: _clip(e.get(k)) for k in keys} for e in errors]
        width = max(len(k) for k in row)
        lines = [
            f"{k.ljust(width)}  {_clip(v, 200) if v is not None else '-'}" for k, v in row.items()
        ]
        return "\n".join(lines) + "\n\n" + render_table("Errors", errors)
    if args.action in ("retry", "cancel"):
        key, value = next(iter(rows[0].items()))
        return f"{key}: {_json_default(value)}\n"
    columns: Sequence[str] | None = None
    if args.command == "events":
        columns = (*_EVENT_COLUMNS, "content") if args.with_text else _EVENT_COLUMNS
    elif args.action in ("history", "run"):
        columns = _RUN_COLUMNS
    shown = [{c: _clip(r.get(c)) for c in (columns or r.keys())} for r in rows]
    title = {"list": "Events" if args.command == "events" else "Jobs"}.get(args.action, "Job runs")
    return render_table(title, shown)


def main(args: argparse.Namespace) -> int:
    """Run one `events`/`jobs` command; returns the exit code."""
    import psycopg
    from psycopg.rows import dict_row

    from .config import ConfigError, load_config
    from .redact import Redactor

    try:
        cfg = load_config(need_delivery=False)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_USAGE
    redact = Redactor(cfg.secrets)
    sql, params = _query(args)
    try:
        with psycopg.connect(
            cfg.database_url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, round(cfg.connect_timeout)),
        ) as conn:
            rows = conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        state = exc.sqlstate
        if state is None:  # no answer from the server (55000 is an OperationalError too)
            print(f"nikita-shim: database unreachable: {redact(str(exc).strip())}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        message = exc.diag.message_primary or str(exc).strip()
        print(f"nikita-shim: {redact(message + hint)} [SQLSTATE {state}]", file=sys.stderr)
        if state in _NOTHING_STATES:
            return EXIT_NOTHING
        return EXIT_USAGE if state.startswith("22") else EXIT_UNAVAILABLE
    print(render(args, rows), end="")
    return _exit_code(args, rows)
