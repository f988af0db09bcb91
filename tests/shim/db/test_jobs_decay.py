"""Decay under real concurrency: two runs at the same instant, in two sessions, decay once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg

WAIT = 30  # seconds: a guard against hangs, never an assertion
P_NOW = "2026-11-28 12:00:00+00"


def test_two_concurrent_runs_at_the_same_instant_decay_once(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as setup:
        setup.execute(
            "INSERT INTO nikita.users (telegram_id, onboarding_status, last_interaction_at)"
            " SELECT 7000 + g, 'completed', %s::timestamptz - interval '10 hours'"
            " FROM generate_series(1, 20) g",
            (P_NOW,),
        )
    first = psycopg.connect(db_url)  # its transaction stays open until the second one waits
    first.execute("SELECT nikita.apply_decay(%s)", (P_NOW,))
    second = psycopg.connect(db_url, autocommit=True)
    pid = second.info.backend_pid

    def second_run() -> dict:
        row = second.execute("SELECT nikita.apply_decay(%s)", (P_NOW,)).fetchone()
        assert row is not None
        return row[0]

    with ThreadPoolExecutor(1) as pool, psycopg.connect(db_url, autocommit=True) as watch:
        future = pool.submit(second_run)
        deadline = time.monotonic() + WAIT
        while True:  # until the second run is blocked on the first one's row locks
            row = watch.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == "Lock":
                break
            assert time.monotonic() < deadline, "the second run never waited for the first"
            time.sleep(0.01)
        first.commit()
        first.close()
        result = future.result(timeout=WAIT)
    second.close()

    assert result["decayed"] == 0, result
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT user_id), sum(delta)"
            " FROM nikita.score_history WHERE event_type = 'decay'"
        ).fetchone()
        assert row == (20, 20, Decimal("-32.00")), "one 1.60 decay row per player, not two"
        scores = conn.execute("SELECT DISTINCT relationship_score FROM nikita.users").fetchall()
        assert scores == [(Decimal("48.40"),)]


def test_run_job_decay_skips_a_bad_row_in_each_committed_batch_with_one_alert(db_url: str) -> None:
    """CALL run_job('decay') as pg_cron does: batches committed one by one, one bad player in
    two of them (the app's trigger refuses their history row). The run completes, every other
    player is decayed, the bad ones are untouched, and the run queues one ops alert."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nikita.users (telegram_id, onboarding_status, last_interaction_at)"
            " SELECT 7100 + g, 'completed', now() - interval '10 hours'"
            " FROM generate_series(1, 300) g"
        )
        conn.execute("ANALYZE nikita.users")
        conn.execute(
            "UPDATE nikita.settings SET value = '40' WHERE key = 'decay_batch_size';"
            "UPDATE nikita.settings SET value = '-100999' WHERE key = 'alert_chat_id'"
        )
        conn.execute(
            "CREATE FUNCTION nikita.test_refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF (SELECT telegram_id FROM nikita.users WHERE id = NEW.user_id)"
            " IN (7105, 7295) THEN RAISE EXCEPTION 'refused for %', NEW.user_id; END IF;"
            " RETURN NEW; END $$;"
            "CREATE TRIGGER test_refuse BEFORE INSERT ON nikita.score_history"
            " FOR EACH ROW EXECUTE FUNCTION nikita.test_refuse_history()"
        )
        conn.execute("CALL nikita.run_job('decay')")
        row = conn.execute(
            "SELECT status, result FROM nikita.job_executions WHERE job_name = 'decay'"
        ).fetchone()
        assert row is not None
        status, result = row
        assert status == "completed", row
        assert result["decayed"] == 298, result
        assert result["batches"] > 2, result
        # The run's result names the skipped players (summed over the committed batches).
        assert result["skipped"] == 2, result
        skipped_ids = {r["user_id"] for r in result["skipped_rows"]}
        bad_ids = {
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM nikita.users WHERE telegram_id IN (7105, 7295)"
            ).fetchall()
        }
        assert skipped_ids == bad_ids, result
        scores = conn.execute(
            "SELECT telegram_id IN (7105, 7295), relationship_score, count(*)"
            " FROM nikita.users GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        assert scores == [(False, Decimal("48.40"), 298), (True, Decimal("50.00"), 2)]
        alerts = conn.execute(
            "SELECT content ->> 'chat_id', content ->> 'text' FROM nikita.scheduled_events"
            " WHERE event_type = 'ops_alert'"
        ).fetchall()
        assert len(alerts) == 1, alerts
        assert alerts[0][0] == "-100999"
        assert "skipped" in alerts[0][1], alerts
