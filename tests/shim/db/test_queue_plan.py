"""The claim path's plan, read from claim_events itself (auto_explain of nested statements),
and the lease-lost messages the shim logs."""

from __future__ import annotations

import psycopg


def test_claim_events_reads_the_partial_claim_index(db_url: str) -> None:
    notices: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nikita.scheduled_events (platform, event_type, content, scheduled_at,"
            " status, delivered_at)"
            " SELECT 'telegram', 'ops_alert', '{\"chat_id\": -1, \"text\": \"x\"}',"
            "        now() - interval '1 second' * g,"
            "        CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'delivered' END,"
            "        CASE WHEN g % 10 = 0 THEN NULL ELSE now() END"
            " FROM generate_series(1, 20000) AS g"
        )
        conn.execute("ANALYZE nikita.scheduled_events")
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET client_min_messages = log")
        rows = conn.execute("SELECT id FROM nikita.claim_events('plan', 50)").fetchall()
        conn.execute("SET client_min_messages = notice")
    assert len(rows) == 50
    plans = [n for n in notices if "scheduled_events" in n and "LockRows" in n]
    assert plans, f"no claim plan among {len(notices)} notices"
    claim_plan = plans[0]
    assert "Index Scan using scheduled_events_claim_idx" in claim_plan, claim_plan
    assert "Seq Scan on scheduled_events" not in claim_plan, claim_plan


def test_lease_lost_is_reported_as_a_warning(db_url: str) -> None:
    warnings: list[tuple[str, str]] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.add_notice_handler(
            lambda d: warnings.append((d.severity_nonlocalized or "", d.message_primary or ""))
        )
        conn.execute(
            "SELECT nikita.schedule_event(NULL, 'telegram', 'ops_alert',"
            ' \'{"chat_id": -1, "text": "x"}\', now())'
        )
        row = conn.execute("SELECT id, lock_token FROM nikita.claim_events('w')").fetchone()
        assert row is not None
        ev_id, token = row
        # The lease expires and the sweep re-queues the event: the old token is stale.
        conn.execute("UPDATE nikita.scheduled_events SET locked_until = now() - interval '1 s'")
        conn.execute("SELECT nikita.sweep_events()")
        assert conn.execute("SELECT nikita.complete_event(%s, %s)", row).fetchone() == (False,)
        assert conn.execute("SELECT nikita.fail_event(%s, %s, 'x')", row).fetchone() == (None,)
        assert conn.execute(
            "SELECT nikita.defer_event(%s, %s, now())", (ev_id, token)
        ).fetchone() == (False,)
        assert conn.execute(
            "SELECT nikita.complete_events(%s::uuid[], %s::uuid[])", ([ev_id], [token])
        ).fetchone() == (0,)
    assert warnings == [
        (
            "WARNING",
            f"complete_event: event {ev_id} not completed: lease lost (event is now pending)",
        ),
        ("WARNING", f"fail_event: event {ev_id} not changed: lease lost (event is now pending)"),
        ("WARNING", f"defer_event: event {ev_id} not deferred: lease lost (event is now pending)"),
        ("WARNING", "complete_events: 1 of 1 events not completed: lease lost"),
    ]
