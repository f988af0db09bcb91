"""`nikita-shim events ...` / `jobs ...` (admin_cli.py): the real CLI process, as a login role
that is a member of nikita_ops, against a fresh migrated database. Output parsed from --json,
exit codes as docs/shim.md "events and jobs" documents them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from nikita_testdb import ROOT

CLI = str(ROOT / ".venv" / "bin" / "nikita-shim")
LOCK_CLASS = 1313559617
SWEEP_LOCK_KEY = 2


@contextlib.contextmanager
def _role_url(db_url: str, in_ops: bool) -> Iterator[str]:
    """db_url as a new login role (cluster-wide: dropped again whatever the test did)."""
    role = f"ops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN" + (" IN ROLE nikita_ops" if in_ops else ""))
        if not in_ops:
            conn.execute(f"GRANT USAGE ON SCHEMA nikita TO {role}")
    try:
        yield make_conninfo(db_url, user=role)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            if not in_ops:
                conn.execute(f"REVOKE USAGE ON SCHEMA nikita FROM {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def ops_url(db_url: str) -> Iterator[str]:
    """db_url as a fresh login role granted nikita_ops (and nothing else)."""
    with _role_url(db_url, in_ops=True) as url:
        yield url


def cli(url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIKITA_SHIM", "DATABASE"))}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def cli_json(url: str, *args: str, code: int = 0) -> Any:
    result = cli(url, *args, "--json")
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def seed(db_url: str) -> dict[str, uuid.UUID]:
    """Player 1: a failed event f (chat blocked) and a pending one p; player 2: a pending one q."""
    u1, u2 = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nikita.users (id, telegram_id) VALUES (%s, 7101), (%s, 7102)", (u1, u2)
        )

        def sched(user: uuid.UUID, due: str, text: str = "secret words") -> uuid.UUID:
            row = conn.execute(
                "SELECT nikita.schedule_event(%s, 'telegram', 'follow_up',"
                " jsonb_build_object('text', %s::text), now() + %s::interval)",
                (user, text, due),
            ).fetchone()
            assert row is not None
            return row[0]

        f = sched(u1, "-1 minute")
        claimed = conn.execute("SELECT id, lock_token FROM nikita.claim_events('w', 10)").fetchall()
        assert [r[0] for r in claimed] == [f]
        conn.execute(
            "SELECT nikita.fail_event(%s, %s, 'Forbidden: bot was blocked', false)",
            (f, claimed[0][1]),
        )
        p = sched(u1, "1 hour")
        q = sched(u2, "1 hour")
    return {"u1": u1, "u2": u2, "f": f, "p": p, "q": q}


def event(db_url: str, eid: uuid.UUID) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, attempts, jsonb_array_length(errors) FROM nikita.scheduled_events"
            " WHERE id = %s",
            (eid,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_list_show_retry(db_url: str, ops_url: str) -> None:
    ev = seed(db_url)
    failed = cli_json(ops_url, "events", "list", "--status", "failed")
    assert [r["id"] for r in failed] == [str(ev["f"])]
    assert failed[0]["last_error"] == "Forbidden: bot was blocked"
    assert "text" not in failed[0]["content"] and failed[0]["content"]["text_chars"] == 12
    mine = cli_json(ops_url, "events", "list", "--user", str(ev["u1"]), "--with-text")
    assert {r["id"] for r in mine} == {str(ev["f"]), str(ev["p"])}
    assert {r["content"]["text"] for r in mine} == {"secret words"}

    shown = cli_json(ops_url, "events", "show", str(ev["f"]))
    assert shown["status"] == "failed" and len(shown["errors"]) == 1

    retried = cli_json(ops_url, "events", "retry", str(ev["f"]))
    assert retried["due_at"]
    assert event(db_url, ev["f"]) == ("pending", 0, 2)
    again = cli(ops_url, "events", "retry", str(ev["f"]))
    assert again.returncode == 1 and "55000" in again.stderr and "only a failed" in again.stderr


def test_tables_for_people(db_url: str, ops_url: str) -> None:
    ev = seed(db_url)
    out = cli(ops_url, "events", "list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Events\nid ") and str(ev["q"]) in out.stdout
    assert "secret words" not in out.stdout
    shown = cli(ops_url, "events", "show", str(ev["f"]))
    assert shown.returncode == 0 and "Errors" in shown.stdout and "bot was blocked" in shown.stdout


def test_cancel(db_url: str, ops_url: str) -> None:
    ev = seed(db_url)
    assert cli_json(ops_url, "events", "cancel", "--user", str(ev["u1"])) == {"cancelled": 1}
    assert event(db_url, ev["p"])[0] == "cancelled"
    assert event(db_url, ev["q"])[0] == "pending"
    assert event(db_url, ev["f"])[0] == "failed"
    none = cli(ops_url, "events", "cancel", "--user", str(ev["u1"]))
    assert (none.returncode, none.stdout) == (1, "cancelled: 0\n")
    assert cli_json(ops_url, "events", "cancel", "--type", "follow_up") == {"cancelled": 1}


def test_jobs(db_url: str, ops_url: str) -> None:
    names = [j["job_name"] for j in cli_json(ops_url, "jobs", "list")]
    assert names[:2] == ["decay", "sweep"]
    run = cli_json(ops_url, "jobs", "run", "sweep")
    assert run["status"] == "completed" and run["result"]["run_by"].startswith("ops_")
    history = cli_json(ops_url, "jobs", "history", "--job", "sweep")
    assert [h["id"] for h in history] == [run["id"]]
    assert cli_json(ops_url, "jobs", "history", "--job", "decay") == []


def test_job_run_skipped_while_another_runs(db_url: str, ops_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, SWEEP_LOCK_KEY))
        run = cli_json(ops_url, "jobs", "run", "sweep", code=1)
    assert run["status"] == "skipped"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["events", "show", "xyz"], 2, "22P02"),
        (["events", "show", str(uuid.UUID(int=9))], 1, "P0002"),
        (["events", "retry", str(uuid.UUID(int=9))], 1, "P0002"),
        (["events", "list", "--limit", "0"], 2, "limit must be between 1 and 1000"),
        (["events", "list", "--since", "nonsense"], 2, "22007"),
        (["events", "list", "--status", "lost"], 2, "status must be one of"),
        (["events", "cancel"], 2, "give a user_id, an event_type or both"),
        (["events", "cancel", "--type", "sms"], 2, "22023"),
        (["jobs", "run", "nope"], 2, "unknown job"),
        (["jobs", "history", "--status", "done"], 2, "22023"),
        (["events", "bogus"], 2, "invalid choice"),
        (["jobs"], 2, "required"),
    ],
)
def test_bad_input(ops_url: str, args: list[str], code: int, says: str) -> None:
    result = cli(ops_url, *args)
    assert (result.returncode, result.stdout) == (code, ""), result.stderr
    assert says in result.stderr


def test_unavailable_and_unconfigured(db_url: str) -> None:
    with _role_url(db_url, in_ops=False) as url:
        denied = cli(url, "jobs", "list")
        assert denied.returncode == 3 and "42501" in denied.stderr
    refused = cli(make_conninfo(db_url, port="1"), "events", "list")
    assert refused.returncode == 3 and "unreachable" in refused.stderr
    assert cli(None, "events", "list").returncode == 2
