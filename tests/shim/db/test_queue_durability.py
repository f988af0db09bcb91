"""The opt-in Telegram durability mode (docs/shim.md, "Telegram durability"), on real
connections: with the session setting nikita.telegram_durability = 'async', claim_events and
complete_events turn synchronous_commit off for their own transaction, and only when it holds
no voice event. Read with SHOW inside the caller's transaction, before its commit (the value
the commit uses); the shim's pool connections carry the setting only when configured.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from nikita_shim.config import load_config
from nikita_shim.service import Shim

PHONE = "+4930123456"


def connect(url: str, durability: str | None = None) -> psycopg.Connection:
    options = f"-c nikita.telegram_durability={durability}" if durability else None
    kwargs = {"options": options} if options else {}
    return psycopg.connect(url, autocommit=True, **kwargs)


def users(conn: psycopg.Connection, n: int) -> list[uuid.UUID]:
    rows = conn.execute(
        "INSERT INTO nikita.users (telegram_id, phone)"
        " SELECT 500000 + c + g, %s || (c + g) FROM generate_series(1, %s) g,"
        " (SELECT count(*) AS c FROM nikita.users) AS n RETURNING id",
        (PHONE, n),
    ).fetchall()
    return [r[0] for r in rows]


def schedule(conn: psycopg.Connection, user: uuid.UUID, platform: str = "telegram") -> uuid.UUID:
    content = '{"text": "x"}' if platform == "telegram" else "{}"
    event_type = "message_delivery" if platform == "telegram" else "call_reminder"
    row = conn.execute(
        "SELECT nikita.schedule_event(%s, %s, %s, %s::jsonb, now() - interval '1 second')",
        (user, platform, event_type, content),
    ).fetchone()
    assert row is not None
    return row[0]


def claim_in_transaction(
    conn: psycopg.Connection, max_voice: int | None
) -> tuple[list[tuple], str]:
    """Claim in an explicit transaction; the rows and synchronous_commit before the commit."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, lock_token, platform FROM nikita.claim_events('t', 100, '2 minutes', %s)",
            (max_voice,),
        ).fetchall()
        setting = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return rows, setting


def complete_in_transaction(conn: psycopg.Connection, rows: list[tuple]) -> tuple[int, str]:
    with conn.transaction():
        done = conn.execute(
            "SELECT nikita.complete_events(%s::uuid[], %s::uuid[])",
            ([r[0] for r in rows], [r[1] for r in rows]),
        ).fetchone()[0]
        setting = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return done, setting


@pytest.mark.parametrize("max_voice", [0, 4, None])
def test_async_session_commits_a_telegram_only_claim_and_completion_asynchronously(
    db_url: str, max_voice: int | None
) -> None:
    with connect(db_url) as admin:
        for u in users(admin, 3):
            schedule(admin, u)
    with connect(db_url, "async") as conn:
        rows, setting = claim_in_transaction(conn, max_voice)
        assert len(rows) == 3 and {r[2] for r in rows} == {"telegram"}
        assert setting == "off"
        # the setting was the transaction's own: the next one is synchronous again
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        done, setting = complete_in_transaction(conn, rows)
        assert done == 3 and setting == "off"


@pytest.mark.parametrize("max_voice", [4, None])
def test_a_claim_or_completion_holding_a_voice_event_stays_synchronous(
    db_url: str, max_voice: int | None
) -> None:
    with connect(db_url) as admin:
        u1, u2 = users(admin, 2)
        schedule(admin, u1, "voice")
        schedule(admin, u2)
    with connect(db_url, "async") as conn:
        rows, setting = claim_in_transaction(conn, max_voice)
        assert sorted(r[2] for r in rows) == ["telegram", "voice"]
        assert setting == "on"
        voice = [r for r in rows if r[2] == "voice"]
        telegram = [r for r in rows if r[2] == "telegram"]
        assert complete_in_transaction(conn, voice) == (1, "on")
        assert complete_in_transaction(conn, telegram) == (1, "off")


def test_a_voice_only_claim_with_the_async_setting_stays_synchronous(db_url: str) -> None:
    with connect(db_url) as admin:
        (u1,) = users(admin, 1)
        schedule(admin, u1, "voice")
    with connect(db_url, "async") as conn:
        rows, setting = claim_in_transaction(conn, 1)
        assert [r[2] for r in rows] == ["voice"] and setting == "on"


def test_without_the_setting_everything_stays_synchronous(db_url: str) -> None:
    with connect(db_url) as admin:
        for u in users(admin, 2):
            schedule(admin, u)
    for durability in (None, "durable"):
        with connect(db_url, durability) as conn:
            rows, setting = claim_in_transaction(conn, 0)
            assert setting == "on"
            assert complete_in_transaction(conn, rows)[1] == "on"
            with connect(db_url) as admin:
                for u in users(admin, 2):
                    schedule(admin, u)


def test_an_empty_claim_or_a_lost_lease_changes_nothing(db_url: str) -> None:
    with connect(db_url, "async") as conn:
        rows, setting = claim_in_transaction(conn, 0)
        assert rows == [] and setting == "on"
        done, setting = complete_in_transaction(conn, [(uuid.uuid4(), uuid.uuid4(), "telegram")])
        assert done == 0 and setting == "on"


@pytest.mark.parametrize(("durability", "expected"), [("async", "async"), ("durable", None)])
def test_the_shims_pool_carries_the_setting_only_in_async_mode(
    db_url: str, durability: str, expected: str | None
) -> None:
    cfg = load_config(
        {
            "DATABASE_URL": db_url,
            "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop",
            "NIKITA_SHIM_VOICE_TRANSPORT": "noop",
            "NIKITA_SHIM_TELEGRAM_DURABILITY": durability,
        }
    )
    assert cfg.telegram_durability == durability

    async def main() -> list[str | None]:
        shim = Shim(cfg)
        assert await shim.db.connect_until_ready()
        try:
            seen = []
            for _ in range(2):  # both of the pool's first connections
                async with shim.db.connection() as conn:
                    cur = await conn.execute(
                        "SELECT current_setting('nikita.telegram_durability', true)"
                    )
                    seen.append((await cur.fetchone())[0])
            return seen
        finally:
            await shim.db.close()

    seen = asyncio.run(main())
    assert all((value or None) == expected for value in seen), seen
