"""The summary job as pg_cron runs it: `CALL nikita.run_job('summary')`, committed step by step.

The rules of a summary are pgTAP (tests/sql/daily_summaries.sql); here the batching under the
real run_job: several committed steps (each its own transaction, so its own created_at and its
own NOTIFY), the job_executions row with the counts summed over the steps, and a run interrupted
after a committed step whose re-run writes the rest once. The batch is lowered to 2 players in
this test's own database by replacing nikita._summary_batch_size() (the constant's one home).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

BATCH = 2


def _small_batch(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE OR REPLACE FUNCTION nikita._summary_batch_size() RETURNS integer"
        " LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp"
        f" AS 'SELECT {BATCH}'"
    )


def _players(conn: psycopg.Connection) -> tuple[list[uuid.UUID], uuid.UUID, uuid.UUID]:
    """Seven players in UTC, in id order: five active yesterday, one whose summary the app
    already wrote, one quiet. Returns (the five active, the one already written, the quiet)."""
    ids = sorted(uuid.uuid4() for _ in range(7))
    active, written, quiet = ids[:3] + ids[4:6], ids[3], ids[6]
    yesterday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
        days=1
    )
    for n, uid in enumerate(ids):
        conn.execute(
            "INSERT INTO nikita.users (id, telegram_id, timezone) VALUES (%s, %s, 'UTC')",
            (uid, 8100 + n),
        )
    for uid in [*active, written]:
        conn.execute(
            "INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type,"
            " recorded_at) VALUES (%s, 51, 1, 1, 'conversation', %s)",
            (uid, yesterday),
        )
    conn.execute(
        "INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, summary_text)"
        " VALUES (%s, %s, 50, 51, 'the app wrote it')",
        (written, yesterday.date()),
    )
    return active, written, quiet


def _job_rows(conn: psycopg.Connection) -> list[tuple[uuid.UUID, datetime]]:
    return conn.execute(
        "SELECT user_id, created_at FROM nikita.daily_summaries"
        " WHERE summary_text <> 'the app wrote it' ORDER BY user_id"
    ).fetchall()


def test_run_job_writes_summaries_in_committed_batches(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(db_url, autocommit=True) as listener,
    ):
        _small_batch(conn)
        active, written, quiet = _players(conn)
        listener.execute("LISTEN nikita_summaries")

        conn.execute("CALL nikita.run_job('summary')")

        rows = conn.execute(
            "SELECT status, result, error FROM nikita.job_executions WHERE job_name = 'summary'"
        ).fetchall()
        assert len(rows) == 1, rows
        status, result, error = rows[0]
        assert (status, error) == ("completed", None)
        assert result == {"summaries": 5, "lookback": "2 days"}, "same keys as one statement"

        job_rows = _job_rows(conn)
        assert sorted(uid for uid, _ in job_rows) == sorted(active), "each active player once"
        assert conn.execute(
            "SELECT summary_text FROM nikita.daily_summaries WHERE user_id = %s", (written,)
        ).fetchall() == [("the app wrote it",)]
        assert conn.execute(
            "SELECT count(*) FROM nikita.daily_summaries WHERE user_id = %s", (quiet,)
        ).fetchone() == (0,)

        # Each step is its own transaction: its rows share its now(), one created_at a step.
        per_step: dict[datetime, int] = {}
        for _, created in job_rows:
            per_step[created] = per_step.get(created, 0) + 1
        # Players in id order, 2 a step: [a1 a2] [a3 written] [a4 a5] [quiet].
        assert sorted(per_step.values()) == [1, 2, 2], per_step
        assert max(per_step.values()) <= BATCH

        # One NOTIFY per committed step that wrote pending rows, with that step's count.
        payloads = sorted(int(n.payload) for n in listener.notifies(timeout=2, stop_after=3))
        assert payloads == [1, 2, 2]
        assert list(listener.notifies(timeout=0.3)) == []


def test_interrupted_run_is_completed_once_by_the_next_run(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _small_batch(conn)
        active, _, _ = _players(conn)
        # A run that stops after its first batch: two steps (start, first batch), each
        # committed (autocommit), as run_job commits them, then nothing more.
        state = conn.execute("SELECT nikita._job_summary_step(now(), NULL)").fetchone()[0]
        state = conn.execute(
            "SELECT nikita._job_summary_step(now(), %s)", (Jsonb(state),)
        ).fetchone()[0]
        assert state["done"] is False
        assert state["result"]["summaries"] == 2
        assert state["players"] == BATCH
        first = {uid for uid, _ in _job_rows(conn)}
        assert first == set(active[:2])

        conn.execute("CALL nikita.run_job('summary')")

        status, result = conn.execute(
            "SELECT status, result FROM nikita.job_executions WHERE job_name = 'summary'"
        ).fetchone()
        assert status == "completed"
        assert result == {"summaries": 3, "lookback": "2 days"}, "only the rest"
        rows = _job_rows(conn)
        assert sorted(uid for uid, _ in rows) == sorted(active), "every summary exactly once"
