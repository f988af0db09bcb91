"""The boss-fight timeout as pg_cron runs it: `CALL nikita.run_job('boss_timeout')`, committed.

The rules themselves are pgTAP (tests/sql/boss_timeout.sql); here the run's bookkeeping: the
job_executions row with the job's counts, and the committed outcome.
"""

from __future__ import annotations

import uuid

import psycopg


def test_run_job_ends_expired_fights_and_records_the_run(db_url: str) -> None:
    expired, fresh, last = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for uid, tg, attempts, started in [
            (expired, 7001, 0, "25 hours"),
            (fresh, 7002, 0, "23 hours"),
            (last, 7003, 2, "30 hours"),
        ]:
            conn.execute(
                "INSERT INTO nikita.users (id, telegram_id, onboarding_status, game_status,"
                " boss_attempts, boss_fight_started_at)"
                " VALUES (%s, %s, 'completed', 'boss_fight', %s, now() - %s::interval)",
                (uid, tg, attempts, started),
            )
        conn.execute("CALL nikita.run_job('boss_timeout')")
        row = conn.execute(
            "SELECT status, result, error FROM nikita.job_executions"
            " WHERE job_name = 'boss_timeout'"
        ).fetchall()
        assert len(row) == 1, row
        status, result, error = row[0]
        assert status == "completed", (status, error)
        assert error is None
        result.pop("p_now")
        assert result == {
            "timed_out": 2,
            "returned": 1,
            "game_overs": 1,
            "messages": 2,
            "batches": 1,
            "skipped": 0,
            "skipped_rows": [],
        }
        states = {
            uid: (status_, attempts_)
            for uid, status_, attempts_ in conn.execute(
                "SELECT id, game_status, boss_attempts FROM nikita.users WHERE id = ANY(%s)",
                ([expired, fresh, last],),
            ).fetchall()
        }
        assert states == {expired: ("active", 1), fresh: ("boss_fight", 0), last: ("game_over", 3)}
        events = conn.execute(
            "SELECT user_id, event_type FROM nikita.scheduled_events ORDER BY event_type"
        ).fetchall()
        assert events == [(expired, "follow_up"), (last, "game_over")]
