"""NOTIFY nikita_events: one per statement that adds pending rows, payload the earliest time.

"Exactly one" without timing: after the statement under test commits, the same session sends a
sentinel NOTIFY. PostgreSQL delivers one session's notifications in commit order, so everything
the statement sent has arrived once the sentinel has.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

WAIT = 30  # seconds: a guard against hangs, never an assertion
SENTINEL = "sentinel"


def received_until_sentinel(listener: psycopg.Connection) -> list[str]:
    payloads: list[str] = []
    for note in listener.notifies(timeout=WAIT):
        if note.payload == SENTINEL:
            return payloads
        payloads.append(note.payload)
    raise AssertionError(f"no sentinel within {WAIT} s; got {payloads}")


def listen(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("LISTEN nikita_events")
    return conn


def then_sentinel(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_notify('nikita_events', %s)", (SENTINEL,))


def parse(payload: str) -> datetime:
    return datetime.fromisoformat(payload)


def test_one_notification_for_a_1000_row_insert_with_the_earliest_time(db_url: str) -> None:
    with listen(db_url) as listener, psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO nikita.users (id, telegram_id) VALUES (gen_random_uuid(), 9)")
        conn.execute(
            "INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content,"
            " scheduled_at)"
            " SELECT u.id, 'telegram', 'message_delivery', '{\"chat_id\": 9, \"text\": \"x\"}',"
            "        now() + interval '1 minute' * ((g * 7919) % 1000 - 300)"
            " FROM nikita.users AS u, generate_series(1, 1000) AS g"
        )
        then_sentinel(conn)
        got = received_until_sentinel(listener)
        row = conn.execute("SELECT min(scheduled_at) FROM nikita.scheduled_events").fetchone()
        assert row is not None
        earliest: datetime = row[0]
    assert len(got) == 1, got
    assert got[0].endswith("Z")
    assert parse(got[0]) == earliest


def test_statements_that_add_no_pending_row_notify_nobody(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO nikita.users (id, telegram_id) VALUES (gen_random_uuid(), 9)")
        conn.execute(
            "SELECT nikita.schedule_event(id, 'telegram', 'message_delivery',"
            " '{\"text\": \"x\"}', now() - interval '1 minute') FROM nikita.users"
        )
        conn.execute(
            "SELECT nikita.schedule_event(id, 'telegram', 'message_delivery',"
            " '{\"text\": \"y\"}', now() + interval '1 hour') FROM nikita.users"
        )
        with listen(db_url) as listener:
            (ev_id, token) = conn.execute(
                "SELECT id, lock_token FROM nikita.claim_events('w')"
            ).fetchone() or (None, None)
            assert ev_id is not None
            conn.execute("SELECT nikita.complete_event(%s, %s)", (ev_id, token))
            # Touching a pending row without moving it adds no pending row.
            conn.execute("UPDATE nikita.scheduled_events SET content = content")
            conn.execute(
                "SELECT nikita.cancel_event(id) FROM nikita.scheduled_events"
                " WHERE status = 'pending'"
            )
            conn.execute("DELETE FROM nikita.scheduled_events")
            # A dedupe hit inserts nothing.
            conn.execute(
                "SELECT nikita.schedule_event(id, 'telegram', 'follow_up', '{\"text\": \"z\"}',"
                " now() + interval '2 hours', 'k') FROM nikita.users"
            )
            then_sentinel(conn)
            assert len(received_until_sentinel(listener)) == 1  # the first 'k' insert only
            conn.execute(
                "SELECT nikita.schedule_event(id, 'telegram', 'follow_up', '{\"text\": \"z\"}',"
                " now(), 'k') FROM nikita.users"
            )
            conn.execute("SELECT nikita.sweep_events(now() - interval '1 day')")
            then_sentinel(conn)
            assert received_until_sentinel(listener) == []


def test_requeue_and_defer_notify_once_with_the_earliest_requeued_time(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nikita.users (id, telegram_id) SELECT gen_random_uuid(), g"
            " FROM generate_series(1, 3) AS g"
        )
        conn.execute(
            "SELECT nikita.schedule_event(id, 'telegram', 'message_delivery', '{\"text\": \"x\"}',"
            " now() - interval '1 minute' * telegram_id) FROM nikita.users"
        )
        claimed = conn.execute(
            "SELECT id, lock_token, scheduled_at FROM nikita.claim_events('w', 10)"
            " ORDER BY scheduled_at"
        ).fetchall()
        assert len(claimed) == 3
        with listen(db_url) as listener:
            # Leases expire: the sweep re-queues all three in one statement.
            conn.execute(
                "UPDATE nikita.scheduled_events SET locked_until = now() - interval '1 second'"
            )
            result = conn.execute("SELECT nikita.sweep_events()").fetchone()
            assert result is not None and result[0]["requeued"] == 3
            then_sentinel(conn)
            got = received_until_sentinel(listener)
            # The trigger's NOTIFY and the sweep's "due work" NOTIFY carry the same earliest
            # time in one transaction, so PostgreSQL folds them into one.
            assert got == [got[0]] and parse(got[0]) == claimed[0][2]

            again = conn.execute(
                "SELECT id, lock_token FROM nikita.claim_events('w', 10) ORDER BY scheduled_at"
            ).fetchall()
            until = conn.execute("SELECT now() + interval '42 seconds'").fetchone()
            assert until is not None
            conn.execute("SELECT nikita.defer_event(%s, %s, %s)", (*again[0], until[0]))
            then_sentinel(conn)
            got = received_until_sentinel(listener)
            assert [parse(p) for p in got] == [until[0]], "a deferred event notifies its new time"

            conn.execute("SELECT nikita.fail_event(%s, %s, 'HTTP 502')", again[1])
            conn.execute("SELECT nikita.fail_event(%s, %s, 'blocked', false)", again[2])
            then_sentinel(conn)
            got = received_until_sentinel(listener)
            assert len(got) == 1, "the retry notifies, the permanent failure does not"
            row = conn.execute(
                "SELECT scheduled_at FROM nikita.scheduled_events WHERE id = %s", (again[1][0],)
            ).fetchone()
            assert row is not None and parse(got[0]) == row[0]


def test_sweep_notifies_when_due_work_exists(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO nikita.users (id, telegram_id) VALUES (gen_random_uuid(), 9)")
        conn.execute(
            "SELECT nikita.schedule_event(id, 'telegram', 'message_delivery', '{\"text\": \"x\"}',"
            " now() - interval '5 minutes') FROM nikita.users"
        )
        with listen(db_url) as listener:
            result = conn.execute("SELECT nikita.sweep_events()").fetchone()
            assert result is not None and result[0]["notified"] is True
            then_sentinel(conn)
            got = received_until_sentinel(listener)
            due = conn.execute("SELECT scheduled_at FROM nikita.scheduled_events").fetchone()
            assert due is not None
            assert [parse(p) for p in got] == [due[0]]
