"""cron/schedule.sql and cron/unschedule.sql against the real pg_cron of the embedded cluster.

pg_cron lives only in the project database (cron.database_name), so these tests use
`cron_database_url` (make test migrates that database first) and put its schedule back as they
found it. The last test is the one integration test that waits for pg_cron to fire a job.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from nikita_testdb import ROOT

EXPECTED = {
    "nikita-decay": ("0 * * * *", "CALL nikita.run_job('decay')"),
    "nikita-sweep": ("* * * * *", "CALL nikita.run_job('sweep')"),
    "nikita-summary": ("5 * * * *", "CALL nikita.run_job('summary')"),
    "nikita-cleanup": ("30 * * * *", "CALL nikita.run_job('cleanup')"),
    "nikita-conversations": ("* * * * *", "CALL nikita.run_job('conversations')"),
    "nikita-boss-timeout": ("*/5 * * * *", "CALL nikita.run_job('boss_timeout')"),
}
CRON_WAIT = 75  # seconds: a minutely job fires within 60 s of any instant


def psql_file(url: str, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
            url,
            "-f",
            str(ROOT / "cron" / name),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def nikita_jobs(conn: psycopg.Connection) -> dict[str, tuple[int, str, str, bool]]:
    rows = conn.execute(
        "SELECT jobname, jobid, schedule, command, active FROM cron.job"
        " WHERE jobname LIKE 'nikita-%' AND database = current_database()"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


@pytest.fixture
def cron_conn(cron_database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(cron_database_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('cron.job')").fetchone() == (None,):
            pytest.fail("pg_cron is not installed in the project database", pytrace=False)
        yield conn
        # Whatever a test did, leave the package's schedule in place.
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'nikita-stale'")
        assert psql_file(cron_database_url, "schedule.sql").returncode == 0


def test_schedule_is_idempotent_and_removes_stale_jobs(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    first = psql_file(cron_database_url, "schedule.sql")
    assert first.returncode == 0, first.stderr
    before = nikita_jobs(cron_conn)
    assert {name: (s, c) for name, (_, s, c, _) in before.items()} == EXPECTED
    assert all(active for (_, _, _, active) in before.values())

    cron_conn.execute("SELECT cron.schedule('nikita-stale', '* * * * *', 'SELECT 1')")
    cron_conn.execute(
        "SELECT cron.alter_job(%s, schedule => '7 7 * * *')", (before["nikita-decay"][0],)
    )
    again = psql_file(cron_database_url, "schedule.sql")
    assert again.returncode == 0, again.stderr
    after = nikita_jobs(cron_conn)
    assert after == before, "re-running leaves exactly the six jobs, current, same job ids"


def test_a_job_scheduled_as_another_role_moves_to_the_jobs_role(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    """Before 0011 the jobs ran as whoever scheduled them (a superuser): migrate moves them."""
    before = nikita_jobs(cron_conn)
    decay_id = before["nikita-decay"][0]
    cron_conn.execute(
        "SELECT cron.alter_job(%s, username => current_user, active => false)", (decay_id,)
    )
    # A second copy under another role would run the job twice.
    cron_conn.execute(
        "SELECT cron.schedule_in_database('nikita-sweep', '* * * * *', 'SELECT 1',"
        " current_database(), current_user, false)"
    )
    result = psql_file(cron_database_url, "schedule.sql")
    assert result.returncode == 0, result.stderr
    rows = cron_conn.execute(
        "SELECT jobname, jobid, username, active FROM cron.job"
        " WHERE jobname LIKE 'nikita-%' AND database = current_database()"
    ).fetchall()
    assert {r[2] for r in rows} == {"nikita_jobs"}
    got = {r[0]: (r[1], r[3]) for r in rows}
    assert got["nikita-decay"] == (decay_id, False), "same job id; the operator's pause kept"
    assert got["nikita-sweep"] == (before["nikita-sweep"][0], True)
    assert len(rows) == len(EXPECTED)
    cron_conn.execute("SELECT cron.alter_job(%s, active => true)", (decay_id,))


def test_a_scheduler_that_is_no_superuser_keeps_its_own_jobs_and_says_so(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    """A managed platform's admin role cannot schedule for nikita_jobs: a NOTICE, its own jobs."""
    role = "nikita_test_scheduler"
    cron_conn.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        cron_conn.execute(f"GRANT USAGE ON SCHEMA cron, nikita TO {role}")
        cron_conn.execute(f"GRANT SELECT ON nikita.job_catalog TO {role}")
        mine = (
            "SELECT jobname, jobid, schedule, command, active FROM cron.job"
            " WHERE jobname LIKE 'nikita-%' AND username = 'nikita_jobs' ORDER BY jobid"
        )
        before = cron_conn.execute(mine).fetchall()
        result = subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-d",
                cron_database_url,
                "-c",
                f"SET ROLE {role}",
                "-f",
                str(ROOT / "cron" / "schedule.sql"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "only a superuser can schedule pg_cron jobs for another role" in result.stderr
        theirs = cron_conn.execute(
            "SELECT jobname FROM cron.job WHERE username = %s AND active", (role,)
        ).fetchall()
        assert {r[0] for r in theirs} == set(EXPECTED)
        assert cron_conn.execute(mine).fetchall() == before, "the jobs role's jobs are untouched"
    finally:
        cron_conn.execute(
            "SELECT cron.unschedule(jobid) FROM cron.job WHERE username = %s", (role,)
        )
        cron_conn.execute(f"DROP OWNED BY {role}")
        cron_conn.execute(f"DROP ROLE {role}")


def test_unschedule_removes_them_all(cron_conn: psycopg.Connection, cron_database_url: str) -> None:
    removed = psql_file(cron_database_url, "unschedule.sql")
    assert removed.returncode == 0, removed.stderr
    assert nikita_jobs(cron_conn) == {}
    assert psql_file(cron_database_url, "unschedule.sql").returncode == 0, "twice is fine"
    restored = psql_file(cron_database_url, "schedule.sql")
    assert restored.returncode == 0, restored.stderr
    assert set(nikita_jobs(cron_conn)) == set(EXPECTED)


def test_unschedule_without_pg_cron_is_a_notice(db_url: str) -> None:
    result = psql_file(db_url, "unschedule.sql")
    assert result.returncode == 0, result.stderr
    assert "pg_cron is not installed" in result.stderr


def test_pg_cron_really_runs_a_job(cron_conn: psycopg.Connection) -> None:
    """The integration test: a minutely nikita job fires by itself and records its run."""
    assert set(nikita_jobs(cron_conn)) == set(EXPECTED)
    owners = cron_conn.execute(
        "SELECT DISTINCT j.username, r.rolsuper FROM cron.job j JOIN pg_roles r"
        " ON r.rolname = j.username WHERE j.jobname LIKE 'nikita-%'"
        " AND j.database = current_database()"
    ).fetchall()
    assert owners == [("nikita_jobs", False)], "pg_cron runs every job as the jobs role"
    row = cron_conn.execute("SELECT coalesce(max(id), 0) FROM nikita.job_executions").fetchone()
    assert row is not None
    last_id = row[0]
    deadline = time.monotonic() + CRON_WAIT
    found = None
    while found is None and time.monotonic() < deadline:
        found = cron_conn.execute(
            "SELECT job_name, status, result, started_at FROM nikita.job_executions"
            " WHERE id > %s AND job_name = 'conversations' AND status <> 'running'"
            " ORDER BY id LIMIT 1",
            (last_id,),
        ).fetchone()
        if found is None:
            time.sleep(1)
    assert found is not None, f"no conversations job ran within {CRON_WAIT} s"
    assert found[1] == "completed", found
    assert set(found[2]) == {"ended", "recovered", "failed"}
    # The run that wrote that row: pg_cron's record of it names the role it connected as.
    details = cron_conn.execute(
        "SELECT d.status, d.username FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
        " WHERE j.jobname = 'nikita-conversations' AND d.start_time <= %s"
        " ORDER BY d.runid DESC LIMIT 1",
        (found[3],),
    ).fetchone()
    assert details == ("succeeded", "nikita_jobs")
