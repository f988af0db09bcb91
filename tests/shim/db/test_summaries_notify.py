"""NOTIFY nikita_summaries (functions/summary_writer.sql): one per statement that inserts
pending daily summaries, with their number; none for rows not wanted (writer_state NULL)."""

from __future__ import annotations

import psycopg


def test_one_notify_per_insert_of_pending_rows(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as listener,
        psycopg.connect(db_url, autocommit=True) as app,
    ):
        listener.execute("LISTEN nikita_summaries")
        user = app.execute(
            "INSERT INTO nikita.users (telegram_id) VALUES (777) RETURNING id"
        ).fetchone()[0]
        insert = (
            "INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end,"
            " writer_state) SELECT %s, '2026-11-01'::date + k, 50, 50, %s"
            " FROM generate_series(0, %s - 1) AS k"
        )
        app.execute(insert, (user, None, 2))  # not wanted: no wake-up
        app.execute(insert.replace("'2026-11-01'", "'2026-12-01'"), (user, "pending", 3))
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
        assert got == [("nikita_summaries", "3")]
        assert list(listener.notifies(timeout=0.5)) == [], "exactly one, only for pending rows"
