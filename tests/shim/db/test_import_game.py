"""import/import_game.sql against the game's tables (tests/sql/fixtures/game_schema.psql): the
real psql script, run once, twice, and after a partial run. docs/import.md has the mapping."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from nikita_testdb import ROOT

IMPORT = ROOT / "import"
FIXTURE = ROOT / "tests" / "sql" / "fixtures" / "game_schema.psql"


def uid(suffix: str) -> str:
    return f"00000000-0000-4000-8000-{suffix.rjust(12, '0')}"


def psql(url: str, *files: str) -> str:
    args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-v", "src=game", "-d", url]
    for f in files:
        args += ["-f", f]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def run_all(url: str) -> str:
    return psql(url, str(IMPORT / "import_game.sql"))


@pytest.fixture
def game_db(db_url: str) -> Iterator[str]:
    psql(db_url, str(FIXTURE))
    yield db_url


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the four target tables, every column, in a stable order."""
    return {
        t: rows(url, f"SELECT to_jsonb(x)::text FROM nikita.{t} x ORDER BY 1")
        for t in ("users", "conversations", "signup_sessions", "scheduled_events")
    }


def ids(url: str, table: str, col: str = "id") -> list[str]:
    return [r[0] for r in rows(url, f"SELECT {col}::text FROM nikita.{table} ORDER BY 1")]


EXPECTED_IDS = {
    "users": sorted(uid(s) for s in ("1", "2", "3", "5")),
    "conversations": sorted(uid(s) for s in ("c1", "c2", "c3", "c4")),
    "signup_sessions": ["2001", "2002", "2003", "2004"],
    "scheduled_events": sorted(
        uid(s) for s in ("e1", "e2", "e3", "e4", "e5", "e9", "ea", "eb", "f0")
    ),
}


def assert_expected_ids(url: str) -> None:
    got = {t: ids(url, t, "telegram_id" if t == "signup_sessions" else "id") for t in EXPECTED_IDS}
    assert got == EXPECTED_IDS


def test_counts_and_mapped_values(game_db: str) -> None:
    run_all(game_db)
    assert_expected_ids(game_db)
    users = {
        r[0]: r[1:]
        for r in rows(
            game_db,
            "SELECT id::text, telegram_id, phone, chapter, relationship_score::text, game_status,"
            " onboarding_status, timezone, last_interaction_at IS NULL FROM nikita.users",
        )
    }
    assert users[uid("1")] == (
        1001,
        "+41791234567",
        2,
        "62.50",
        "active",
        "completed",
        "Europe/Zurich",
        False,
    )
    assert users[uid("2")] == (
        None,
        "+41791234568",
        1,
        "48.00",
        "active",
        "completed",
        "UTC",
        False,
    )
    assert users[uid("3")] == (1003, None, 3, "55.00", "boss_fight", "completed", "UTC", True)
    assert users[uid("5")] == (1005, None, 5, "100.00", "won", "skipped", "America/New_York", False)
    conv = dict(rows(game_db, "SELECT id::text, status FROM nikita.conversations"))
    assert conv == {
        uid("c1"): "active",
        uid("c2"): "processed",
        uid("c3"): "ended",
        uid("c4"): "ended",
    }
    signups = {
        r[0]: r[1:]
        for r in rows(
            game_db,
            "SELECT telegram_id, chat_id, email, signup_state, attempts"
            " FROM nikita.signup_sessions",
        )
    }
    assert signups == {
        2001: (2001, None, "awaiting_email", 0),
        2002: (2002, "ana@example.com", "awaiting_code", 1),
        2003: (2003, "bo@example.com", "awaiting_code", 0),
        2004: (2004, "cy@example.com", "verified", 10),
    }
    events = {
        r[0]: r[1:]
        for r in rows(
            game_db,
            "SELECT id::text, status, attempts, last_error, delivered_at IS NOT NULL,"
            " jsonb_array_length(errors) FROM nikita.scheduled_events",
        )
    }
    stale = "expired: still pending in the game at the import"
    assert events == {
        uid("e1"): ("pending", 0, None, False, 0),
        uid("e2"): ("pending", 1, "timeout", False, 0),
        uid("e3"): ("pending", 0, None, False, 0),
        uid("e4"): ("failed", 0, stale, False, 1),
        uid("e5"): ("failed", 0, stale, False, 1),
        uid("e9"): ("delivered", 0, None, True, 0),
        uid("ea"): ("failed", 3, "Forbidden: bot was blocked by the user", False, 1),
        uid("eb"): ("cancelled", 0, None, False, 0),
        uid("f0"): ("pending", 0, None, False, 0),
    }


def test_events_keep_due_time_content_and_dedupe_key(game_db: str) -> None:
    run_all(game_db)
    got = rows(
        game_db,
        "SELECT n.id::text, n.scheduled_at = g.scheduled_at, n.dedupe_key, n.content,"
        " n.source_conversation_id::text FROM nikita.scheduled_events n"
        " JOIN game.scheduled_events g USING (id) ORDER BY n.seq",
    )
    assert all(r[1] for r in got), got
    by_id = {r[0]: r[2:] for r in got}
    assert by_id[uid("e1")][0] == "reply:5b0a3a52-3c52-4f0e-9a43-1f0c8d0b6a11"
    assert by_id[uid("e1")][2] == uid("c1")
    assert by_id[uid("e2")][1] == {"chat_id": 1001, "text": "still there?"}
    assert by_id[uid("e3")][1] == {"prompt": "Call me tonight?", "to_number": "+41791234568"}
    assert by_id[uid("f0")][2] is None
    assert [r[0] for r in got if r[2]] == [uid("e1")]
    # the per-user order follows the due times
    seq = [
        r[0]
        for r in rows(
            game_db,
            "SELECT id::text FROM nikita.scheduled_events"
            f" WHERE user_id = '{uid('1')}' AND status = 'pending' ORDER BY seq",
        )
    ]
    assert seq == [uid("e2"), uid("f0"), uid("e1")]


EXPECTED_REPORT = {
    ("users", uid("2"), "no_telegram_id", "changed"),
    ("users", uid("2"), "timezone_missing", "changed"),
    ("users", uid("3"), "no_phone", "changed"),
    ("users", uid("3"), "timezone_invalid", "changed"),
    ("users", uid("3"), "implausible_date", "changed"),
    ("users", uid("3"), "onboarding_status_unmapped", "changed"),
    ("users", uid("4"), "unknown_game_status", "skipped"),
    ("users", uid("5"), "phone_not_e164", "changed"),
    ("users", uid("5"), "chapter_out_of_range", "changed"),
    ("users", uid("5"), "score_out_of_range", "changed"),
    ("conversations", uid("c3"), "status_mapped", "changed"),
    ("conversations", uid("c4"), "status_mapped", "changed"),
    ("conversations", uid("c5"), "user_not_imported", "skipped"),
    ("conversations", uid("c6"), "unknown_platform", "skipped"),
    ("conversations", uid("c7"), "unknown_status", "skipped"),
    ("telegram_signup_sessions", "2001", "email_invalid", "changed"),
    ("telegram_signup_sessions", "2002", "no_chat_id", "changed"),
    ("telegram_signup_sessions", "2003", "magic_link_not_carried", "changed"),
    ("telegram_signup_sessions", "2004", "attempts_out_of_range", "changed"),
    ("telegram_signup_sessions", "2005", "expired", "skipped"),
    ("telegram_signup_sessions", "2006", "email_invalid", "skipped"),
    ("scheduled_events", uid("e4"), "stale_pending", "changed"),
    ("scheduled_events", uid("e5"), "stale_pending", "changed"),
    ("scheduled_events", uid("e6"), "content_refused", "skipped"),
    ("scheduled_events", uid("e7"), "content_refused", "skipped"),
    ("scheduled_events", uid("e8"), "dedupe_key_live", "skipped"),
    ("scheduled_events", uid("ec"), "user_not_imported", "skipped"),
    ("scheduled_events", uid("ed"), "unknown_status", "skipped"),
    ("scheduled_events", uid("ee"), "unknown_event_type", "skipped"),
    ("scheduled_events", uid("ef"), "content_refused", "skipped"),
    ("scheduled_events", uid("f0"), "source_conversation_not_imported", "changed"),
}


def test_odd_rows_reported_with_reason_and_summary(game_db: str) -> None:
    out = run_all(game_db)
    report = rows(
        game_db, "SELECT source_table, source_key, reason, action, detail FROM nikita_import.report"
    )
    assert {r[:4] for r in report} == EXPECTED_REPORT
    detail = {(r[1], r[2]): r[4] for r in report}
    assert "no telegram_id" in detail[(uid("e6"), "content_refused")]
    assert "blank" in detail[(uid("e7"), "content_refused")]
    assert "no phone" in detail[(uid("ef"), "content_refused")]
    assert "'Mars/Olympus_Mons'" in detail[(uid("3"), "timezone_invalid")]
    assert "import: scheduled_events " + uid("e7") + " skipped: content_refused" in out
    assert " scheduled_events         | content_refused                  | skipped |    3" in out


REPORT_ROWS = (
    "SELECT source_table, source_key, reason, action, detail FROM nikita_import.report"
    " ORDER BY 1, 2, 3"
)


def test_second_run_changes_nothing(game_db: str) -> None:
    run_all(game_db)
    before = snapshot(game_db)
    report_before = rows(
        game_db,
        REPORT_ROWS,
    )
    out = run_all(game_db)
    assert snapshot(game_db) == before
    assert (
        rows(
            game_db,
            REPORT_ROWS,
        )
        == report_before
    )
    assert '"inserted": 0, "already_present": 9' in out


def test_partial_run_then_whole_has_no_duplicates(game_db: str) -> None:
    psql(game_db, str(IMPORT / "00_setup.sql"), str(IMPORT / "10_users.sql"))
    assert ids(game_db, "users") == EXPECTED_IDS["users"]
    assert ids(game_db, "scheduled_events") == []
    psql(
        game_db,
        str(IMPORT / "00_setup.sql"),
        str(IMPORT / "10_users.sql"),
        str(IMPORT / "20_conversations.sql"),
    )
    out = run_all(game_db)
    assert '"inserted": 0, "already_present": 4' in out  # users, on the third pass
    assert_expected_ids(game_db)
    assert rows(
        game_db,
        "SELECT count(*), count(DISTINCT (source_table, source_key, reason))"
        " FROM nikita_import.report",
    ) == [(31, 31)]


def test_legacy_pending_registrations(game_db: str) -> None:
    """Before the game's 20260424120000 rename: pending_registrations, otp_state, otp_attempts."""
    with psycopg.connect(game_db) as conn:
        conn.execute(
            "ALTER TABLE game.telegram_signup_sessions"
            " DROP CONSTRAINT telegram_signup_sessions_signup_state_check;"
            " ALTER TABLE game.telegram_signup_sessions RENAME TO pending_registrations;"
            " ALTER TABLE game.pending_registrations RENAME signup_state TO otp_state;"
            " ALTER TABLE game.pending_registrations RENAME attempts TO otp_attempts;"
            " UPDATE game.pending_registrations SET otp_state = CASE telegram_id"
            "   WHEN 2001 THEN 'pending' WHEN 2003 THEN 'expired' WHEN 2004 THEN 'verified'"
            "   ELSE otp_state END"
        )
    run_all(game_db)
    assert rows(
        game_db,
        "SELECT telegram_id, email, signup_state FROM nikita.signup_sessions ORDER BY 1",
    ) == [
        (2001, None, "awaiting_email"),
        (2002, "ana@example.com", "awaiting_code"),
        (2004, "cy@example.com", "verified"),
    ]
    assert rows(
        game_db,
        "SELECT source_key, reason, action FROM nikita_import.report"
        " WHERE source_table = 'pending_registrations' ORDER BY 1, 2",
    ) == [
        ("2001", "email_invalid", "changed"),
        ("2002", "no_chat_id", "changed"),
        ("2003", "expired", "skipped"),
        ("2004", "attempts_out_of_range", "changed"),
        ("2005", "expired", "skipped"),
        ("2006", "email_invalid", "skipped"),
    ]
