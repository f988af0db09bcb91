"""scripts/cron.sh (cron/schedule.sql, cron/unschedule.sql) against the embedded cluster's pg_cron.

pg_cron lives only in the project database (cron.database_name), so these tests use
`cron_database_url` (make test migrates that database first) and put its schedule back as they
found it. The last test is the one integration test that waits for pg_cron to fire a job.
"""

from __future__ import annotations

import os
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


def cron_sh(url: str, action: str, **env: str) -> subprocess.CompletedProcess[str]:
    """scripts/cron.sh schedule|remove for the game database at `url` (what migrate runs)."""
    return subprocess.run(
        [str(ROOT / "scripts" / "cron.sh"), action],
        env={**os.environ, "DATABASE_URL": url, **env},
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


FOREIGN = ("nikita-touchpoints", "*/15 * * * *", "SELECT 'the game''s own job'")


@pytest.fixture
def cron_conn(cron_database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(cron_database_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('cron.job')").fetchone() == (None,):
            pytest.fail("pg_cron is not installed in the project database", pytrace=False)
        yield conn
        # Whatever a test did, leave the package's schedule (and nothing else) in place.
        conn.execute(
            "SELECT cron.unschedule(jobid) FROM cron.job"
            " WHERE jobname IN ('nikita-touchpoints', 'nikita-decay') AND command NOT LIKE 'CALL%'"
        )
        conn.execute("UPDATE nikita.cron_jobs SET schedule = NULL, enabled = true")
        restored = cron_sh(cron_database_url, "schedule")
        assert restored.returncode == 0, restored.stderr


def recorded(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT job_name, cron_job_id FROM nikita.cron_jobs").fetchall()
    return {r[0]: r[1] for r in rows}


def test_schedule_is_idempotent_and_leaves_foreign_jobs(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    first = cron_sh(cron_database_url, "schedule")
    assert first.returncode == 0, first.stderr
    before = nikita_jobs(cron_conn)
    assert {name: (s, c) for name, (_, s, c, _) in before.items()} == EXPECTED
    assert all(active for (_, _, _, active) in before.values())
    ids = recorded(cron_conn)
    assert sorted(ids.values()) == sorted(j for (j, _, _, _) in before.values())

    # The live game's own job, with the package's prefix: not the package's.
    cron_conn.execute("SELECT cron.schedule(%s, %s, %s)", FOREIGN)
    cron_conn.execute(
        "SELECT cron.alter_job(%s, schedule => '7 7 * * *')", (before["nikita-decay"][0],)
    )
    again = cron_sh(cron_database_url, "schedule")
    assert again.returncode == 0, again.stderr
    after = nikita_jobs(cron_conn)
    foreign = after.pop(FOREIGN[0])
    assert foreign[1:] == (FOREIGN[1], FOREIGN[2], True), "the game's job is untouched"
    assert after == before, "the package's six jobs, current, same job ids"
    assert recorded(cron_conn) == ids

    removed = cron_sh(cron_database_url, "remove")
    assert removed.returncode == 0, removed.stderr
    left = nikita_jobs(cron_conn)
    assert set(left) == {FOREIGN[0]}, "cron-remove removes the package's jobs only"
    assert set(recorded(cron_conn).values()) == {None}


def test_operator_schedule_applies_at_once_and_survives_migrate(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    cron_conn.execute("SELECT nikita.set_job_schedule('decay', '*/10 2-4 * * mon-fri')")
    cron_conn.execute("SELECT nikita.set_job_enabled('sweep', false)")
    now = nikita_jobs(cron_conn)
    assert now["nikita-decay"][1] == "*/10 2-4 * * mon-fri", "applied to pg_cron at once"
    assert now["nikita-sweep"][3] is False
    assert cron_sh(cron_database_url, "schedule").returncode == 0
    assert nikita_jobs(cron_conn) == now, "a later migrate keeps the operator's settings"
    health = cron_conn.execute(
        "SELECT enabled, overdue FROM nikita.job_health WHERE job_name = 'sweep'"
    ).fetchone()
    assert health == (False, False)
    # Back to the catalog's schedule: NULL.
    cron_conn.execute("SELECT nikita.set_job_schedule('decay', NULL)")
    assert nikita_jobs(cron_conn)["nikita-decay"][1] == EXPECTED["nikita-decay"][0]


def test_validation_never_lets_through_what_pg_cron_refuses(cron_conn: psycopg.Connection) -> None:
    """pg_cron's own parser is the oracle: every schedule the package accepts, pg_cron accepts."""
    samples = [
        "* * * * *",
        "*/5 * * * *",
        "1-5/2 * * * *",
        "0 0 31 2 *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 7",
        "* * * * 8",
        "5/10 * * * *",
        "*/0 * * * *",
        "1,,2 * * * *",
        "@hourly",
        "@daily",
        "* * * *",
        "0 0 * JAN MON",
        "0-59/30 * * * *",
        "0,15,30,45 */2 1-15/3 * 1-5",
        " 1 2 3 4 5 ",
        "a * * * *",
        "-1 * * * *",
        *STRICTER,
    ]
    for sample in samples:
        (mine,) = cron_conn.execute(
            "SELECT nikita._cron_schedule_error(%s) IS NULL", (sample,)
        ).fetchone() or (None,)
        try:
            with cron_conn.transaction():
                cron_conn.execute("SELECT cron.schedule('nikita-probe', %s, 'SELECT 1')", (sample,))
                raise _Rollback
        except _Rollback:
            theirs = True
        except psycopg.Error:
            theirs = False
        assert not mine or theirs, f"{sample!r}: accepted by the package, refused by pg_cron"
        assert mine or not theirs or sample in STRICTER, f"{sample!r}: refused, pg_cron takes it"
    assert all(s in samples for s in STRICTER)


# pg_cron 1.4 takes these, the package does not: a backwards range never runs, @reboot is no
# period, a sixth field is no seconds field in 1.4, a step beyond the field selects one value.
STRICTER = ("5-1 * * * *", "@reboot", "* * * * * *", "*/60 * * * *")


class _Rollback(Exception):
    """Leave cron.schedule's insert uncommitted."""


def test_a_foreign_job_with_the_package_name_is_not_overwritten(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    """pg_cron upserts by (name, role): a job the package did not create is never taken over."""
    assert cron_sh(cron_database_url, "remove").returncode == 0
    cron_conn.execute(
        "SELECT cron.schedule_in_database('nikita-decay', '1 1 * * *', 'SELECT 42',"
        " current_database(), 'nikita_jobs')"
    )
    result = cron_sh(cron_database_url, "schedule")
    assert result.returncode != 0
    assert "pg_cron already has a job named nikita-decay of role nikita_jobs" in result.stderr
    left = nikita_jobs(cron_conn)
    assert {n: (s, c) for n, (_, s, c, _) in left.items()} == {
        "nikita-decay": ("1 1 * * *", "SELECT 42")
    }, "nothing half-written: one transaction"


def test_a_job_scheduled_as_another_role_moves_to_the_jobs_role(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    """Before 0011 the jobs ran as whoever scheduled them (a superuser): migrate moves them."""
    before = nikita_jobs(cron_conn)
    decay_id = before["nikita-decay"][0]
    cron_conn.execute(
        "SELECT cron.alter_job(%s, username => current_user, active => false)", (decay_id,)
    )
    cron_conn.execute("UPDATE nikita.cron_jobs SET enabled = false WHERE job_name = 'decay'")
    # A second copy of the package's job under another role (an earlier version's) would run
    # the job twice.
    cron_conn.execute(
        "SELECT cron.schedule_in_database('nikita-sweep', '* * * * *',"
        " 'CALL nikita.run_job(''sweep'')', current_database(), current_user, false)"
    )
    result = cron_sh(cron_database_url, "schedule")
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


def test_a_scheduler_that_is_no_superuser_keeps_its_own_jobs_and_says_so(
    cron_conn: psycopg.Connection, cron_database_url: str
) -> None:
    """A managed platform's admin role cannot schedule for nikita_jobs: a NOTICE, its own jobs."""
    role = "nikita_test_scheduler"
    cron_conn.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        cron_conn.execute(f"GRANT USAGE ON SCHEMA cron, nikita TO {role}")
        cron_conn.execute(f"GRANT SELECT ON nikita.job_catalog TO {role}")
        cron_conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON nikita.cron_jobs TO {role}")
        # pg_cron revokes these from PUBLIC; managed platforms grant them to their admin role.
        cron_conn.execute(
            "GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text,"
            f" boolean), cron.alter_job(bigint, text, text, text, text, boolean) TO {role}"
        )
        mine = (
            "SELECT jobname, jobid, schedule, command, active FROM cron.job"
            " WHERE jobname LIKE 'nikita-%' AND username = 'nikita_jobs' ORDER BY jobid"
        )
        before = cron_conn.execute(mine).fetchall()
        result = cron_sh(cron_database_url, "schedule", PGOPTIONS=f"-c role={role}")
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


def test_remove_without_pg_cron_is_a_notice(db_url: str) -> None:
    result = cron_sh(db_url, "remove", NIKITA_CRON_FIND="no")
    assert result.returncode == 0, result.stderr
    assert "nothing to remove" in result.stderr


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
