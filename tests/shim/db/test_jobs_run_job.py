"""nikita.run_job as pg_cron calls it: `CALL nikita.run_job(name)` on an autocommit connection.

run_job COMMITs between its steps, so these paths cannot run inside a pgTAP transaction. No
timed assertions: overlap is forced by holding the job's advisory lock in another session.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

LOCK_CLASS = 1313559617
JOBS = ["decay", "sweep", "summary", "cleanup", "conversations", "boss_timeout"]


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def run_job(conn: psycopg.Connection, name: str) -> None:
    conn.execute("CALL nikita.run_job(%s)", (name,))


def rows(conn: psycopg.Connection, job: str) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT status, result, error, duration_ms, completed_at IS NOT NULL AS settled"
        " FROM nikita.job_executions WHERE job_name = %s ORDER BY id",
        (job,),
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def job_locks_held(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid",
        (LOCK_CLASS,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def eligible_users(conn: psycopg.Connection, n: int, idle_hours: int = 9) -> list[uuid.UUID]:
    """n chapter-1 players idle `idle_hours` (8 h grace), ids in ascending order."""
    ids = sorted(uuid.uuid4() for _ in range(n))
    for i, uid in enumerate(ids):
        conn.execute(
            "INSERT INTO nikita.users (id, telegram_id, onboarding_status, last_interaction_at)"
            " VALUES (%s, %s, 'completed', now() - make_interval(hours => %s))",
            (uid, 5000 + i, idle_hours),
        )
    return ids


@pytest.mark.parametrize("job", JOBS)
def test_each_job_completes_with_its_result(db_url: str, job: str) -> None:
    with connect(db_url) as conn:
        run_job(conn, job)
        [row] = rows(conn, job)
        assert row["status"] == "completed", row
        assert isinstance(row["result"], dict) and row["result"], row
        assert row["error"] is None
        assert row["duration_ms"] is not None and row["duration_ms"] >= 0
        assert row["settled"]
        assert job_locks_held(conn) == 0, "the job lock is released"


def test_an_overlapping_run_is_skipped_at_once(db_url: str) -> None:
    with connect(db_url) as holder, connect(db_url) as conn:
        holder.execute("SELECT pg_advisory_lock(%s, 1)", (LOCK_CLASS,))  # decay's lock
        run_job(conn, "decay")  # returns: it does not wait for the lock
        assert [r["status"] for r in rows(conn, "decay")] == ["skipped"]
        assert rows(conn, "decay")[0]["result"] == {"reason": "the previous run is still running"}
        health = conn.execute(
            "SELECT running_now FROM nikita.job_health WHERE job_name = 'decay'"
        ).fetchone()
        assert health == (True,)
        holder.execute("SELECT pg_advisory_unlock(%s, 1)", (LOCK_CLASS,))
        run_job(conn, "decay")
        assert [r["status"] for r in rows(conn, "decay")] == ["skipped", "completed"]


def test_a_failed_run_keeps_its_row_rolls_back_its_work_and_alerts(db_url: str) -> None:
    with connect(db_url) as conn:
        [uid] = eligible_users(conn, 1)
        conn.execute("UPDATE nikita.settings SET value = '-100777' WHERE key = 'alert_chat_id'")
        conn.execute(
            "CREATE FUNCTION nikita.test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'disk on fire' USING ERRCODE = '53100'; END$$"
        )
        conn.execute(
            "CREATE TRIGGER test_refuse BEFORE UPDATE ON nikita.users"
            " FOR EACH ROW EXECUTE FUNCTION nikita.test_refuse()"
        )
        run_job(conn, "decay")
        [row] = rows(conn, "decay")
        assert row["status"] == "failed"
        assert row["error"] == "disk on fire (SQLSTATE 53100)"
        assert row["settled"] and row["duration_ms"] is not None
        assert row["result"]["decayed"] == 0
        score = conn.execute(
            "SELECT relationship_score, decayed_through FROM nikita.users WHERE id = %s", (uid,)
        ).fetchone()
        assert score == (50, None), "the job's work was rolled back, its row was not"
        alert = conn.execute(
            "SELECT id, event_type, content FROM nikita.scheduled_events WHERE user_id IS NULL"
        ).fetchall()
        assert len(alert) == 1
        assert alert[0][1] == "ops_alert"
        assert alert[0][2]["chat_id"] == -100777
        assert "job decay failed" in alert[0][2]["text"]
        assert "disk on fire" in alert[0][2]["text"]
        assert row["result"]["alert_event_id"] == str(alert[0][0])
        assert job_locks_held(conn) == 0

        # Failing again within the hour: a row, no second alert.
        run_job(conn, "decay")
        assert [r["status"] for r in rows(conn, "decay")] == ["failed", "failed"]
        count = conn.execute(
            "SELECT count(*) FROM nikita.scheduled_events WHERE event_type = 'ops_alert'"
        ).fetchone()
        assert count == (1,)


def test_a_failed_single_step_job_without_alert_chat(db_url: str) -> None:
    with connect(db_url) as conn:
        # 0009 refuses the bad value on write; the job's own guard is the second line behind it
        # (a value stored before 0009, or by an owner who dropped the check).
        conn.execute("ALTER TABLE nikita.settings DROP CONSTRAINT settings_value_valid")
        conn.execute(
            "UPDATE nikita.settings SET value = '\"-5 minutes\"'"
            " WHERE key = 'conversation_idle_timeout'"
        )
        run_job(conn, "conversations")
        [row] = rows(conn, "conversations")
        assert row["status"] == "failed"
        assert row["error"].startswith("setting conversation_idle_timeout must be positive")
        assert row["error"].endswith("(SQLSTATE 22023)")
        assert row["result"] == {}, "no alert chat: no alert"
        count = conn.execute("SELECT count(*) FROM nikita.scheduled_events").fetchone()
        assert count == (0,)


def many_pages_of_players(conn: psycopg.Connection, n: int = 300) -> int:
    """n decaying players over several pages, one page per batch; returns the page count."""
    eligible_users(conn, n)
    conn.execute("ANALYZE nikita.users")
    conn.execute("UPDATE nikita.settings SET value = '1' WHERE key = 'decay_batch_size'")
    row = conn.execute(
        "SELECT pg_relation_size('nikita.users') / current_setting('block_size')::int"
    ).fetchone()
    assert row is not None and row[0] > 2, "the players must span several pages"
    return int(row[0])


def test_decay_commits_batch_by_batch_pinned_to_one_instant(db_url: str) -> None:
    with connect(db_url) as conn:
        pages = many_pages_of_players(conn)
        run_job(conn, "decay")
        [row] = rows(conn, "decay")
        assert row["status"] == "completed"
        result = row["result"]
        # A row moved to a later page by its update is met again, with nothing left to decay.
        assert result["decayed"] == 300 and result["due"] >= 300
        # One page per batch; the table may grow while rows move, and the loop follows it.
        assert result["batches"] >= pages
        assert result["max_batch_ms"] >= 0
        p_now = datetime.fromisoformat(result["p_now"])
        recorded = conn.execute(
            "SELECT DISTINCT recorded_at FROM nikita.score_history WHERE event_type = 'decay'"
        ).fetchall()
        assert recorded == [(p_now,)], "every batch is pinned to the run's p_now"
        lag = conn.execute(
            "SELECT max(%s - decayed_through), min(%s - decayed_through) FROM nikita.users",
            (p_now, p_now),
        ).fetchone()
        assert lag is not None and lag[1] >= timedelta(0) and lag[0] < timedelta(seconds=45), (
            "watermarks are p_now, less at most a cent's worth of time"
        )


def test_a_failing_batch_keeps_the_batches_committed_before_it(db_url: str) -> None:
    with connect(db_url) as conn:
        assert many_pages_of_players(conn) > 2
        # A player on the last page refuses to be updated with an error that is not a row's
        # fault (class 53; decay skips a row that fails otherwise): the last batch fails.
        conn.execute(
            "CREATE FUNCTION nikita.test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '53100'; END$$"
        )
        row = conn.execute(
            "SELECT id, (ctid::text::point)[0]::int FROM nikita.users ORDER BY ctid DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        refused, last_page = row
        conn.execute(
            "CREATE TRIGGER test_refuse BEFORE UPDATE ON nikita.users FOR EACH ROW"
            f" WHEN (OLD.id = '{refused}') EXECUTE FUNCTION nikita.test_refuse()"
        )
        before_last = conn.execute(
            "SELECT count(*) FROM nikita.users WHERE (ctid::text::point)[0] < %s", (last_page,)
        ).fetchone()
        assert before_last is not None and before_last[0] > 0
        run_job(conn, "decay")
        [job] = rows(conn, "decay")
        assert job["status"] == "failed"
        assert job["error"] == "refused (SQLSTATE 53100)"
        # One page per batch: the batches of the pages before the refused player's committed.
        assert (job["result"]["batches"], job["result"]["decayed"]) == (last_page, before_last[0])
        decayed = conn.execute(
            "SELECT count(*) FILTER (WHERE decayed_through IS NOT NULL),"
            " bool_or(decayed_through IS NOT NULL) FILTER (WHERE id = %s)"
            " FROM nikita.users",
            (refused,),
        ).fetchone()
        assert decayed == (before_last[0], False), "the batches before the last stayed committed"


def test_a_running_row_left_by_a_dead_run_is_settled_as_abandoned(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute(
            "INSERT INTO nikita.job_executions (job_name, started_at)"
            " VALUES ('sweep', now() - interval '1 hour')"
        )
        run_job(conn, "sweep")
        got = rows(conn, "sweep")
        assert [r["status"] for r in got] == ["failed", "completed"]
        assert got[0]["error"].startswith("abandoned")


def test_inside_a_transaction_block_it_refuses_and_holds_no_lock(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:  # not autocommit: psycopg opens a transaction
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            conn.execute("CALL nikita.run_job('cleanup')")
        conn.rollback()
        assert job_locks_held(conn) == 0
    with connect(db_url) as conn:
        run_job(conn, "cleanup")
        assert [r["status"] for r in rows(conn, "cleanup")] == ["completed"]


def test_the_result_is_the_jobs_own_counts(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute(
            "INSERT INTO nikita.signup_sessions (telegram_id, chat_id, expires_at) VALUES"
            " (1, 1, now() - interval '1 minute'), (2, 2, now() - interval '1 day'),"
            " (3, 3, now() + interval '5 minutes')"
        )
        run_job(conn, "cleanup")
        [row] = rows(conn, "cleanup")
        assert row["result"] == {
            "signup_sessions": 2,
            "events": 0,
            "failed_events": 0,
            "job_executions": 0,
            "cron_run_details": 0,
            "abandoned_jobs": 0,
        }
        left = conn.execute("SELECT telegram_id FROM nikita.signup_sessions").fetchall()
        assert left == [(3,)], "the two expired sessions are the ones the result counts"


def test_a_result_that_is_not_an_object_is_wrapped(db_url: str) -> None:
    with connect(db_url) as conn:
        # A job function that answers a bare number (as a future or broken one might).
        conn.execute(
            "CREATE OR REPLACE FUNCTION nikita.cleanup(p_now timestamptz DEFAULT now())"
            " RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp"
            " AS $$SELECT '42'::jsonb$$"
        )
        run_job(conn, "cleanup")
        [row] = rows(conn, "cleanup")
        assert (row["status"], row["result"]) == ("completed", {"result": 42})


@pytest.mark.parametrize("job", JOBS)
def test_the_jobs_role_runs_each_job_without_table_rights(db_url: str, job: str) -> None:
    """pg_cron runs the jobs as nikita_jobs: run_job works with its rights alone."""
    with connect(db_url) as admin, connect(db_url) as conn:
        [uid] = eligible_users(admin, 1)
        conn.execute("SET ROLE nikita_jobs")
        run_job(conn, job)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM nikita.users")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT nikita.apply_decay(now() + interval '1 year')")
        [row] = rows(admin, job)
        assert row["status"] == "completed", row
        if job == "decay":
            assert row["result"]["decayed"] == 1
            history = admin.execute(
                "SELECT count(*) FROM nikita.score_history WHERE user_id = %s", (uid,)
            ).fetchone()
            assert history == (1,)
