"""Command line entry point of nikita-shim: run, status, check, migrate; events and jobs
(admin_cli.py); dashboard (dashboard.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from . import __version__, admin_cli, dashboard, runtime
from .config import ConfigError, load_config
from .health import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_UNREACHABLE,
    problems,
    render_json,
    render_status,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nikita-shim",
        description="Deliver due nikita events (Telegram, ElevenLabs voice) claimed from "
        "PostgreSQL. Configuration is read from the environment (see docs/shim.md).",
    )
    parser.add_argument("--version", action="version", version=f"nikita-shim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the delivery loop in the foreground")
    run.add_argument(
        "--conversation-processor",
        metavar="MODULE:FUNCTION",
        help="also claim ended conversations and hand each to this async callable",
    )
    run.add_argument(
        "--summary-writer",
        metavar="MODULE:FUNCTION",
        help="also write each new daily summary in Nikita's voice with this async callable "
        "(default: NIKITA_SHIM_SUMMARY_WRITER)",
    )
    status = sub.add_parser("status", help="print queue and job health as tables")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    check = sub.add_parser(
        "check",
        help="monitoring plugin: exit 0 OK, 1 WARNING, 2 CRITICAL (database unreachable, or "
        "migrated by another version of this package), 3 UNKNOWN (bad configuration, views "
        "missing); one line with perfdata",
    )
    check.add_argument(
        "-w",
        "--warning",
        metavar="SECONDS",
        help="oldest due event lag for WARNING (default NIKITA_SHIM_CHECK_MAX_LAG, 300)",
    )
    check.add_argument(
        "-c",
        "--critical",
        metavar="SECONDS",
        help="oldest due event lag for CRITICAL (default three times the warning)",
    )
    migrate = sub.add_parser(
        "migrate",
        help="install or upgrade the database side (sql/, functions/, cron/ carried by this "
        "package) with psql, as scripts/migrate.sh does; exit 3 if an applied migration changed",
    )
    migrate.add_argument(
        "--database-url", metavar="URL", help="the database to migrate (default: DATABASE_URL)"
    )
    admin_cli.add_commands(sub)
    dashboard.add_command(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .conversations import ProcessorError, load_processor
    from .logs import setup_logging
    from .service import EXIT_CRASH, Shim, run_with_signals

    try:
        cfg = load_config()
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(
        cfg.log_level, cfg.log_format, cfg.secrets, priority_prefix=cfg.log_priority_prefix
    )
    processor = None
    if args.conversation_processor:
        sys.path.insert(0, os.getcwd())
        try:
            processor = load_processor(args.conversation_processor)
        except ProcessorError as exc:
            print(f"nikita-shim: invalid configuration:\n  - {exc}", file=sys.stderr)
            return EXIT_CONFIG

    writer = None
    writer_spec = args.summary_writer or cfg.summary_writer
    if writer_spec:
        from .summaries import WriterError, load_writer

        sys.path.insert(0, os.getcwd())
        try:
            writer = load_writer(writer_spec)
        except WriterError as exc:
            print(f"nikita-shim: invalid configuration:\n  - {exc}", file=sys.stderr)
            return EXIT_CONFIG

    async def main() -> int:
        shim = Shim(cfg, processor=processor, writer=writer)
        return await run_with_signals(shim)

    try:
        return runtime.run(main(), cfg.event_loop)
    except ConfigError as exc:  # NIKITA_SHIM_EVENT_LOOP=uvloop without uvloop
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    except Exception:
        # through the logging formatter (redacted), not Python's bare traceback on stderr
        logging.getLogger("nikita_shim").critical("crashed", exc_info=True)
        return EXIT_CRASH


def _thresholds(args: argparse.Namespace, default: float) -> tuple[float, float]:
    """-w/-c as numbers; a bad value raises ValueError (UNKNOWN, not argparse's exit 2)."""
    warning = float(args.warning) if args.warning is not None else default
    critical = float(args.critical) if args.critical is not None else 3 * warning
    if not 0 < warning <= critical < float("inf"):
        raise ValueError(f"need 0 < warning <= critical, got {warning:g} and {critical:g}")
    return warning, critical


def _health(args: argparse.Namespace) -> int:
    import psycopg

    from .health import CRITICAL, UNKNOWN, check_state, fetch_health, plugin_line
    from .redact import Redactor
    from .schema_version import check_url

    checking = args.command == "check"
    try:
        cfg = load_config(need_delivery=False)
    except ConfigError as exc:
        if checking:
            print(plugin_line(UNKNOWN, "invalid configuration (details on stderr)"))
        print(exc.render(), file=sys.stderr)
        return UNKNOWN if checking else EXIT_CONFIG
    warning = critical = 0.0
    if checking:
        try:
            warning, critical = _thresholds(args, cfg.check_max_lag)
        except ValueError as exc:
            print(plugin_line(UNKNOWN, f"bad -w/-c: {exc}"))
            return UNKNOWN
    redact = Redactor(cfg.secrets)
    try:
        version_problem = asyncio.run(check_url(cfg.database_url, cfg.connect_timeout))
        if version_problem and checking:
            # Before the health views (another version's may not be readable): CRITICAL, as the
            # shim refuses to run against it, so nothing is delivered.
            print(plugin_line(CRITICAL, "schema version: " + version_problem))
            return CRITICAL
        queue, jobs = asyncio.run(fetch_health(cfg.database_url, cfg.connect_timeout))
    except psycopg.OperationalError as exc:
        text = f"database unreachable: {redact(str(exc).strip())}"
        if checking:
            print(plugin_line(CRITICAL, text))
            return CRITICAL
        print(f"nikita-shim: {text}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except psycopg.Error as exc:
        text = f"cannot read health views: {redact(str(exc).strip())}"
        if checking:
            print(plugin_line(UNKNOWN, text))
            return UNKNOWN
        print(f"nikita-shim: {text}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if checking:
        state, text, perf = check_state(queue, jobs, warning, critical)
        print(plugin_line(state, text, perf))
        return state
    found = problems(queue, jobs, cfg.check_max_lag)
    if version_problem:
        found.insert(0, version_problem)
    print(render_json(queue, jobs) if args.json else render_status(queue, jobs), end="")
    if not args.json:
        print("\nHealth: " + ("OK" if not found else "UNHEALTHY"))
        for p in found:
            print(f"  - {p}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command in ("events", "jobs"):
        return admin_cli.main(args)
    if args.command == "dashboard":
        return dashboard.main(args)
    if args.command == "migrate":
        from .migrate import run as run_migrate

        return run_migrate(args.database_url)
    logging.basicConfig(level=logging.WARNING)
    return _health(args)


if __name__ == "__main__":
    sys.exit(main())
