"""`nikita-shim dashboard`: one HTML page for the operator, on 127.0.0.1 (docs/shim.md).

Queue health by platform (nikita.queue_health), due and late counts, the last failures with
their errors, pending events, recent job runs; a Retry button on each failed event and a Cancel
button on each pending one, as plain HTML forms POSTing back here (no JavaScript, nothing from
outside). It connects with DATABASE_URL, a login role in nikita_ops (nikita_readonly too for the
health view), and calls only the operator API (queries.py).

Every request carries NIKITA_SHIM_DASHBOARD_TOKEN: `?token=` on GET, a `token` form field on
POST, or `Authorization: Bearer`; anything else is 401. Everything shown is escaped; a
message's text only with `?with_text=1`. Standard library http.server, one connection per
request (an operator's page, not a service).
"""

from __future__ import annotations

import argparse
import hmac
import html
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from . import queries as q

log = logging.getLogger("nikita_shim.dashboard")

TOKEN_ENV = "NIKITA_SHIM_DASHBOARD_TOKEN"
PORT_ENV = "NIKITA_SHIM_DASHBOARD_PORT"
DEFAULT_PORT = 8089
HOST = "127.0.0.1"
ROWS = 20  # rows per list
MAX_BODY = 16 * 1024

EXIT_OK = 0
EXIT_CONFIG = 2

# No script at all, no outside resource; the inline style sheet is the only allowance.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token may be in the URL
    "Cache-Control": "no-store",
}

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;
vertical-align:top}th{background:#f0f0f0}td.err{color:#a00;max-width:40em;word-break:break-word}
.note{background:#ffd;padding:.5em;border:1px solid #cc9}.muted{color:#777}form{margin:0}
"""


# ---- pure parts (tests/shim/unit/test_dashboard.py) -------------------------------------------


def token_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison; no token given, or an empty expected one, never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def given_token(
    headers: Mapping[str, str], query: Mapping[str, list[str]], form: Mapping[str, list[str]]
) -> str | None:
    """The token the request carries: Authorization: Bearer, else ?token= (GET), else the form
    field (POST)."""
    auth = headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for source in (form, query):
        values = source.get("token")
        if values:
            return values[0]
    return None


def esc(value: Any) -> str:
    """A value as escaped HTML text: times to the second, JSON for jsonb, '-' for NULL."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, dict | list):
        value = json.dumps(value, default=str)
    return html.escape(str(value), quote=True)


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """columns are plain names (escaped here), cells already HTML."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    return f"<table><tr>{head}</tr>{body}</table>"


def _form(action: str, token: str, fields: Mapping[str, Any], label: str, with_text: bool) -> str:
    hidden = {"token": token, **fields}
    if with_text:
        hidden["with_text"] = "1"
    inputs = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items()
    )
    return f'<form method="post" action="/{action}">{inputs}<button>{esc(label)}</button></form>'


def render_page(data: Mapping[str, Any], token: str, with_text: bool, note: str | None) -> str:
    """The whole page from the rows fetched by fetch(); everything shown goes through esc()."""
    parts = ["<h1>nikita queue</h1>"]
    if note:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append(f'<p class="muted">as of {esc(data.get("now"))}</p>')

    parts.append("<h2>Queue health (last 24 hours)</h2>")
    health = data.get("health")
    if health is None:
        parts.append(f'<p class="note">{esc(data.get("health_error"))}</p>')
    else:
        cols = ("platform", "pending", "due_now", "oldest_due_lag_s", "in_flight")
        cols += ("delivered_24h", "failed_24h")
        parts.append(_table(cols, ([esc(r.get(c)) for c in cols] for r in health), "no rows"))
    late = data.get("late")
    late_text = f"{late}+" if late is not None and late >= 1000 else esc(late)
    parts.append(
        f"<p>Due now: <b>{esc(data.get('due'))}</b> &middot; late (due more than "
        f"{esc(data.get('max_lag'))} s ago): <b>{late_text}</b></p>"
    )

    ev_cols = ["id", "user_id", "platform", "event_type", "order_time", "scheduled_at"]
    ev_cols += ["attempts", "error_count"]

    def event_cells(r: Mapping[str, Any], action: str, label: str, extra: list[str]) -> list[str]:
        cells = [esc(r.get(c)) for c in ev_cols]
        cells += extra
        if with_text:
            cells.append(esc(r.get("content")))
        fields = (
            {"id": r.get("id")}
            if action == "retry"
            else {"user_id": r.get("user_id"), "event_type": r.get("event_type")}
        )
        cells.append(_form(action, token, fields, label, with_text))
        return cells

    text_col = ["content"] if with_text else []
    parts.append("<h2>Last failures</h2>")
    failed = data.get("failed") or []
    parts.append(
        _table(
            [*ev_cols, "last_error", *text_col, ""],
            (
                event_cells(r, "retry", "Retry", [f'<span class="err">{esc(r["last_error"])}'])
                for r in failed
            ),
            "no failed events",
        )
    )
    parts.append(
        "<h2>Pending events (newest)</h2><p class=muted>Cancel cancels the player's pending "
        "events of that type.</p>"
    )
    pending = data.get("pending") or []
    parts.append(
        _table(
            [*ev_cols, *text_col, ""],
            (event_cells(r, "cancel", "Cancel", []) for r in pending),
            "no pending events",
        )
    )

    parts.append("<h2>Recent job runs</h2>")
    run_cols = ("id", "job_name", "status", "started_at", "duration_ms", "result", "error")
    runs = data.get("runs") or []
    parts.append(_table(run_cols, ([esc(r.get(c)) for c in run_cols] for r in runs), "no runs"))

    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>nikita queue</title>"
        f"<style>{_STYLE}</style></head><body>" + "".join(parts) + "</body></html>"
    )


# ---- database ------------------------------------------------------------------------------


def fetch(conn: Any, with_text: bool, max_lag: float) -> dict[str, Any]:
    """Everything the page shows, through the operator API (one read-only pass)."""
    import psycopg

    data: dict[str, Any] = {"max_lag": round(max_lag)}
    data["now"] = conn.execute(q.DASHBOARD_NOW).fetchone()["now"]
    try:
        with conn.transaction():
            data["health"] = conn.execute(q.QUEUE_HEALTH).fetchall()
        data["due"] = sum(r["due_now"] for r in data["health"])
    except psycopg.errors.InsufficientPrivilege:
        data["health"] = None
        data["health_error"] = (
            "nikita.queue_health is not readable by this login: grant it nikita_readonly too"
        )
        data["due"] = conn.execute(q.DASHBOARD_DUE).fetchone()["due"]
    data["late"] = conn.execute(q.DASHBOARD_LATE, (max_lag, max_lag)).fetchone()["late"]
    data["failed"] = conn.execute(
        q.FIND_EVENTS, (None, "failed", None, None, None, ROWS, with_text)
    ).fetchall()
    data["pending"] = conn.execute(
        q.FIND_EVENTS, (None, "pending", None, None, None, ROWS, with_text)
    ).fetchall()
    data["runs"] = conn.execute(q.LIST_JOB_RUNS, (None, None, None, None, ROWS)).fetchall()
    return data


def act(conn: Any, action: str, form: Mapping[str, list[str]]) -> str:
    """Run one POSTed action; returns the note shown on the page."""

    def field(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values and values[0] else None

    if action == "retry":
        row = conn.execute(q.RETRY_EVENT, (field("id"), None)).fetchone()
        return f"event {field('id')} retried, due {esc(row['due_at'])}"
    row = conn.execute(q.CANCEL_PENDING_EVENTS, (field("user_id"), field("event_type"))).fetchone()
    return (
        f"cancelled {row['cancelled']} pending {field('event_type')} event(s) of {field('user_id')}"
    )


# ---- HTTP ----------------------------------------------------------------------------------


def make_handler(
    token: str, connect: Callable[[], Any], max_lag: float, redact: Callable[[str], str]
) -> type[BaseHTTPRequestHandler]:
    import psycopg

    class Handler(BaseHTTPRequestHandler):
        server_version = "nikita-dashboard"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            # the request line may hold ?token=: log the path only
            log.info("%s %s -> %s", self.command, urlsplit(self.path).path, args[1:2])

        def _send(self, status: int, body: str, headers: Mapping[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _deny(self) -> None:
            self._send(
                HTTPStatus.UNAUTHORIZED,
                "<!DOCTYPE html><title>401</title><p>401: a valid token is required</p>",
                {"WWW-Authenticate": 'Bearer realm="nikita-dashboard"'},
            )

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if not token_ok(token, given_token(self.headers, query, {})):
                return self._deny()
            if url.path != "/":
                return self._send(HTTPStatus.NOT_FOUND, "<!DOCTYPE html><p>404</p>")
            with_text = query.get("with_text", [""])[0] == "1"
            note = query.get("note", [None])[0]
            try:
                with connect() as conn:
                    data = fetch(conn, with_text, max_lag)
            except psycopg.Error as exc:
                text = redact(str(exc).strip())
                return self._send(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"<!DOCTYPE html><p>database: {esc(text)}</p>",
                )
            self._send(HTTPStatus.OK, render_page(data, token, with_text, note))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "<p>413</p>")
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            if not token_ok(token, given_token(self.headers, {}, form)):
                return self._deny()
            action = url.path.strip("/")
            if action not in ("retry", "cancel"):
                return self._send(HTTPStatus.NOT_FOUND, "<!DOCTYPE html><p>404</p>")
            try:
                with connect() as conn:
                    note = act(conn, action, form)
            except psycopg.Error as exc:
                message = exc.diag.message_primary or str(exc).strip()
                note = f"{action} failed: {redact(message)} [SQLSTATE {exc.sqlstate}]"
            back = {"token": token, "note": note}
            if form.get("with_text", [""])[0] == "1":
                back["with_text"] = "1"
            self._send(HTTPStatus.SEE_OTHER, "", {"Location": "/?" + urlencode(back)})

        do_HEAD = do_GET

    return Handler


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "dashboard",
        help=f"serve the operator's web page on {HOST} (token: {TOKEN_ENV}; nikita_ops)",
    )
    p.add_argument(
        "--port",
        type=int,
        help=f"TCP port on {HOST} (default {PORT_ENV}, else {DEFAULT_PORT}; 0: any free port)",
    )


def main(args: argparse.Namespace) -> int:
    import psycopg
    from psycopg.rows import dict_row

    from .config import ConfigError, load_config
    from .redact import Redactor

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    token = os.environ.get(TOKEN_ENV, "")
    problems = []
    if not token.strip():
        problems.append(f"{TOKEN_ENV} is missing: every request must carry it")
    port = args.port
    if port is None:
        try:
            port = int(os.environ.get(PORT_ENV) or DEFAULT_PORT)
        except ValueError:
            problems.append(f"{PORT_ENV} must be a port number")
            port = DEFAULT_PORT
    if not 0 <= port <= 65535:
        problems.append(f"port must be 0..65535, got {port}")
    try:
        cfg = load_config(need_delivery=False)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        cfg = None
    if problems:
        print("nikita-shim: invalid configuration:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
    if problems or cfg is None:
        return EXIT_CONFIG
    redact = Redactor((*cfg.secrets, token))
    timeout = max(1, round(cfg.connect_timeout))

    def connect() -> Any:
        return psycopg.connect(
            cfg.database_url, autocommit=True, row_factory=dict_row, connect_timeout=timeout
        )

    server = ThreadingHTTPServer(
        (HOST, port), make_handler(token, connect, cfg.check_max_lag, redact)
    )
    # the one line a test (or an operator) waits for
    print(f"nikita-shim dashboard on http://{HOST}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK
