"""Conversation hand-off across sessions: one NOTIFY per detection run, SKIP LOCKED claims.

"Exactly one" without timing: after the statement under test commits, the same session sends a
sentinel NOTIFY; one session's notifications arrive in commit order.
"""

from __future__ import annotations

import json

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


def conversations(conn: psycopg.Connection, n: int, status: str, idle_minutes: int) -> None:
    conn.execute(
        "INSERT INTO nikita.users (id, telegram_id) VALUES (gen_random_uuid(), 4242)"
        " ON CONFLICT (telegram_id) DO NOTHING"
    )
    conn.execute(
        "INSERT INTO nikita.conversations (user_id, platform, status, started_at,"
        " last_message_at, ended_at)"
        " SELECT u.id, 'telegram', %s, now() - interval '2 hours',"
        "        now() - make_interval(mins => %s),"
        "        CASE WHEN %s <> 'active' THEN now() - make_interval(mins => %s) END"
        " FROM nikita.users u, generate_series(1, %s) WHERE u.telegram_id = 4242",
        (status, idle_minutes, status, idle_minutes, n),
    )


def test_one_notify_per_detection_run(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as listener,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        listener.execute("LISTEN nikita_conversations")
        conversations(conn, 3, "active", 20)
        conversations(conn, 2, "active", 5)
        conn.execute("SELECT nikita.detect_stale_conversations()")
        conn.execute("SELECT pg_notify('nikita_conversations', %s)", (SENTINEL,))
        got = received_until_sentinel(listener)
        assert [json.loads(p) for p in got] == [{"ended": 3, "recovered": 0}]

        # Nothing became claimable: no notification at all.
        conn.execute("SELECT nikita.detect_stale_conversations()")
        conn.execute("SELECT pg_notify('nikita_conversations', %s)", (SENTINEL,))
        assert received_until_sentinel(listener) == []


def test_two_workers_claim_disjoint_conversations_without_waiting(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as setup,
        psycopg.connect(db_url) as first,
        psycopg.connect(db_url, autocommit=True) as second,
    ):
        conversations(setup, 4, "ended", 30)
        mine = first.execute("SELECT id FROM nikita.claim_conversations('w1', 2)").fetchall()
        # first's transaction is still open: its two rows are locked, SKIP LOCKED passes them.
        second.execute("SET lock_timeout = '5s'")
        theirs = second.execute("SELECT id FROM nikita.claim_conversations('w2', 10)").fetchall()
        first.commit()
        assert len(mine) == 2 and len(theirs) == 2
        assert not {r[0] for r in mine} & {r[0] for r in theirs}
