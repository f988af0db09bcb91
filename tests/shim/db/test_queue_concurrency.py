"""The event queue under real concurrency: separate psycopg connections, real transactions.

No timed assertions: ordering is forced with uncommitted transactions and barriers; timeouts
only keep a broken build from hanging.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from nikita_testdb import ROOT

WAIT = 30  # seconds: a guard against hangs, never an assertion


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def make_users(conn: psycopg.Connection, n: int) -> list[uuid.UUID]:
    rows = conn.execute(
        "INSERT INTO nikita.users (telegram_id) SELECT 100000 + g FROM generate_series(1, %s) g"
        " RETURNING id",
        (n,),
    ).fetchall()
    return [r[0] for r in rows]


def schedule(conn: psycopg.Connection, user: uuid.UUID, ago_s: float, text: str = "x") -> uuid.UUID:
    row = conn.execute(
        "SELECT nikita.schedule_event(%s, 'telegram', 'message_delivery',"
        " jsonb_build_object('text', %s::text), now() - make_interval(secs => %s))",
        (user, text, ago_s),
    ).fetchone()
    assert row is not None
    return row[0]


def claim(conn: psycopg.Connection, worker: str, n: int) -> list[tuple]:
    return conn.execute(
        "SELECT id, lock_token, user_id, attempts FROM nikita.claim_events(%s, %s)", (worker, n)
    ).fetchall()


def complete_all(conn: psycopg.Connection, rows: list[tuple]) -> int:
    if not rows:
        return 0
    row = conn.execute(
        "SELECT nikita.complete_events(%s::uuid[], %s::uuid[])",
        ([r[0] for r in rows], [r[1] for r in rows]),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_two_workers_claim_each_of_1000_events_exactly_once(db_url: str) -> None:
    # 500 player events (50 players x 10: per-user exclusivity spreads them over rounds) and
    # 500 ops alerts (no player, no per-user limit). Players are few because inserting one costs
    # a time zone check of some 50 ms (users_timezone_iana).
    with connect(db_url) as conn:
        users = make_users(conn, 50)
        conn.execute(
            "SELECT nikita.schedule_event(u, 'telegram', 'message_delivery', '{\"text\": \"x\"}',"
            " now() - interval '1 minute' * random())"
            " FROM unnest(%s::uuid[]) AS u, generate_series(1, 10)",
            (users,),
        )
        conn.execute(
            "SELECT nikita.schedule_event(NULL, 'telegram', 'ops_alert',"
            " jsonb_build_object('text', 'alert ' || g, 'chat_id', -1),"
            " now() - interval '1 minute' * random())"
            " FROM generate_series(1, 500) AS g"
        )
        assert conn.execute("SELECT count(*) FROM nikita.scheduled_events").fetchone() == (1000,)

    barrier = threading.Barrier(2, timeout=WAIT)
    claimed: dict[str, list[uuid.UUID]] = {"w1": [], "w2": []}

    def worker(name: str) -> None:
        with connect(db_url) as conn:
            while True:
                barrier.wait()  # both claim at the same moment, every round
                rows = claim(conn, name, 50)
                claimed[name].extend(r[0] for r in rows)
                assert complete_all(conn, rows) == len(rows)
                barrier.wait()  # both finished the round: is anything left?
                left = conn.execute(
                    "SELECT count(*) FROM nikita.scheduled_events WHERE status = 'pending'"
                ).fetchone()
                if left == (0,):
                    return

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(worker, "w1"), pool.submit(worker, "w2")]
        for f in futures:
            f.result(timeout=WAIT)

    everything = claimed["w1"] + claimed["w2"]
    duplicates = [i for i, n in Counter(everything).items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} events claimed twice"
    assert len(everything) == 1000
    assert claimed["w1"] and claimed["w2"], "both workers took part"
    with connect(db_url) as conn:
        stats = conn.execute(
            "SELECT status, count(*), max(attempts) FROM nikita.scheduled_events GROUP BY status"
        ).fetchall()
    assert stats == [("delivered", 1000, 1)]


def test_uncommitted_claim_blocks_the_user_even_for_an_older_event(db_url: str) -> None:
    """The race a statement snapshot alone would lose.

    A claims u's only event e2 and has not committed. Meanwhile an older event e1 of u is
    inserted. B's snapshot sees e2 still pending (A's claim is not visible), so e1 looks like
    u's oldest event with nothing in flight; only the per-user lock keeps B away.
    """
    with connect(db_url) as setup:
        (user,) = make_users(setup, 1)
        e2 = schedule(setup, user, 60)
    with connect(db_url) as a, connect(db_url) as b:
        a.autocommit = False
        rows_a = claim(a, "A", 10)
        assert [r[0] for r in rows_a] == [e2]
        with connect(db_url) as other:
            e1 = schedule(other, user, 600)  # older than e2, committed
        assert claim(b, "B", 10) == [], "B must not claim e1 while A's claim of e2 is open"
        a.commit()
        assert claim(b, "B", 10) == [], "after A commits, e2 is in flight: still nothing for u"
        a.autocommit = True
        assert complete_all(a, rows_a) == 1
        assert [r[0] for r in claim(b, "B", 10)] == [e1], "u is free again: e1 is claimed"


def test_uncommitted_claim_does_not_block_other_users(db_url: str) -> None:
    with connect(db_url) as setup:
        u1, u2 = make_users(setup, 2)
        e1 = schedule(setup, u1, 60)
        e2 = schedule(setup, u2, 30)
    with connect(db_url) as a, connect(db_url) as b:
        a.autocommit = False
        assert [r[0] for r in claim(a, "A", 1)] == [e1]
        # e1 is row-locked by A (skipped), u1 is advisory-locked; u2 is free.
        assert [r[0] for r in claim(b, "B", 10)] == [e2]
        a.rollback()
        assert [r[0] for r in claim(b, "B", 10)] == [e1], "A rolled back: e1 is claimable"


def test_claim_skips_rows_locked_elsewhere_and_takes_at_most_max(db_url: str) -> None:
    """LIMIT max FOR UPDATE SKIP LOCKED, by behaviour: ops alerts (no per-user lock) of which
    the oldest is row-locked by another transaction. The claim neither waits for it nor takes
    it, and returns exactly max of the others, oldest first."""
    with connect(db_url) as setup:
        ids = [
            setup.execute(
                "SELECT nikita.schedule_event(NULL, 'telegram', 'ops_alert',"
                " jsonb_build_object('text', 'a' || %s::text, 'chat_id', -1),"
                " now() - make_interval(mins => %s))",
                (i, 10 - i),
            ).fetchone()[0]
            for i in range(4)
        ]
    with connect(db_url) as a, connect(db_url) as b:
        a.autocommit = False
        a.execute("SELECT 1 FROM nikita.scheduled_events WHERE id = %s FOR UPDATE", (ids[0],))
        # A guard against a hang: a claim that waited for A's lock fails here instead.
        b.execute("SET lock_timeout = '10s'")
        assert [r[0] for r in claim(b, "B", 2)] == ids[1:3]
        a.rollback()
        assert [r[0] for r in claim(b, "B", 5)] == [ids[0], ids[3]]


def test_per_user_exclusivity_under_concurrent_load(db_url: str) -> None:
    """Four workers, 20 users with many events each, a writer adding older events and workers
    deferring events into the past; an oracle unique index on (user_id) WHERE status = 'sending'
    turns any second in-flight event of a user into an error."""
    with connect(db_url) as setup:
        users = make_users(setup, 20)
        setup.execute(
            "SELECT nikita.schedule_event(u, 'telegram', 'message_delivery',"
            " jsonb_build_object('text', g::text), now() - interval '1 second' * g)"
            " FROM unnest(%s::uuid[]) AS u, generate_series(1, 40) AS g",
            (users,),
        )
        # Test-only oracle in this throwaway database.
        setup.execute(
            "CREATE UNIQUE INDEX oracle_one_in_flight ON nikita.scheduled_events (user_id)"
            " WHERE status = 'sending'"
        )
    stop = threading.Event()
    violations: list[str] = []
    delivered: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()

    def worker(name: str, seed: int) -> None:
        rng = random.Random(seed)
        with connect(db_url) as conn:
            while True:
                try:
                    rows = claim(conn, name, rng.choice([1, 5, 20]))
                except psycopg.errors.UniqueViolation as exc:
                    violations.append(str(exc))
                    stop.set()
                    return
                if not rows and stop.is_set():
                    live = conn.execute(
                        "SELECT count(*) FROM nikita.scheduled_events"
                        " WHERE status IN ('pending', 'sending')"
                    ).fetchone()
                    if live == (0,):  # the writer is done and nothing can come back
                        return
                users_in_batch = [r[2] for r in rows]
                if len(set(users_in_batch)) != len(users_in_batch):
                    violations.append(f"{name}: one batch holds two events of a user")
                for ev_id, token, _user, _attempts in rows:
                    if rng.random() < 0.15:
                        conn.execute(
                            "SELECT nikita.defer_event(%s, %s, now() - interval '1 hour')",
                            (ev_id, token),
                        )
                    else:
                        ok = conn.execute(
                            "SELECT nikita.complete_event(%s, %s)", (ev_id, token)
                        ).fetchone()
                        assert ok == (True,)
                        with lock:
                            delivered[ev_id] += 1

    def writer() -> None:
        rng = random.Random(7)
        with connect(db_url) as conn:
            for i in range(200):
                # Older than anything queued: the race of the test above, at random.
                schedule(conn, rng.choice(users), 3600 + i, f"late-{i}")
        stop.set()

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(worker, f"w{i}", i) for i in range(4)]
        futures.append(pool.submit(writer))
        for f in futures:
            f.result(timeout=WAIT * 2)

    assert violations == []
    with connect(db_url) as conn:
        left = conn.execute(
            "SELECT status, count(*) FROM nikita.scheduled_events GROUP BY status"
        ).fetchall()
    assert left == [("delivered", 20 * 40 + 200)]
    assert sum(delivered.values()) == 20 * 40 + 200
    assert max(delivered.values()) == 1, "an event was delivered twice"


def test_oracle_index_catches_two_events_of_a_user_in_flight(db_url: str) -> None:
    """The oracle of the load test is not vacuous."""
    with connect(db_url) as conn:
        (user,) = make_users(conn, 1)
        schedule(conn, user, 10)
        schedule(conn, user, 5)
        conn.execute(
            "CREATE UNIQUE INDEX oracle_one_in_flight ON nikita.scheduled_events (user_id)"
            " WHERE status = 'sending'"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "UPDATE nikita.scheduled_events SET status = 'sending', attempts = 1,"
                " locked_by = 'x', locked_until = now(), lock_token = gen_random_uuid()"
            )


def wait_until_blocked(watch: psycopg.Connection, pid: int) -> None:
    """Until backend `pid` waits for a lock (a guard timeout, not an assertion on time)."""
    for _ in range(WAIT * 100):
        row = watch.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row == ("Lock",):
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"backend {pid} never blocked")


RECHECK = """
          AND (
              e.user_id IS NULL
              OR NOT EXISTS (
                  SELECT 1 FROM nikita.scheduled_events AS s
                  WHERE s.user_id = e.user_id AND s.status = 'sending'
              )
          )
        RETURNING"""


def wait_until_waiting_for(watch: psycopg.Connection, pid: int, relation: str) -> None:
    """Until backend `pid` waits for a lock on `relation` (a guard timeout, not an assertion)."""
    for _ in range(WAIT * 100):
        row = watch.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted AND relation = %s::regclass",
            (pid, relation),
        ).fetchone()
        if row is not None:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"backend {pid} never waited for {relation}")


def lock_index(conn: psycopg.Connection, index: str) -> None:
    """ACCESS EXCLUSIVE on the index alone (SET TABLESPACE to its own tablespace changes
    nothing else; LOCK TABLE does not take indexes)."""
    conn.execute(f"ALTER INDEX {index} SET TABLESPACE pg_default")


ORDER_IDX = "nikita.scheduled_events_user_order_idx"
CLAIM_IDX = "nikita.scheduled_events_claim_idx"


def claim_while_another_claim_commits(db_url: str) -> tuple[list[tuple], int]:
    """The window only the second statement's fresh snapshot closes, forced.

    A's candidate statement takes its snapshot and then stops: the executor opens the
    statement's indexes only after the snapshot was taken (a generic plan, so no planning
    opens them first; no seq scan, so the plan reads them), and T holds an ACCESS EXCLUSIVE
    lock on the per-user order index. Meanwhile, in T's transaction, the app queues e1 for u
    before u's e2 and claimer B claims e1. L queues for a lock on the claim index behind T.
    T commits: A gets the order index and stops again at the claim index, which L got first;
    only when T has released everything (also u's advisory lock) does L let A go on. A's
    snapshot does not see e1: e2 looks like u's head with nothing in flight, and u's advisory
    lock is free.

    Returns A's claim and the number of u's events in flight afterwards.
    """
    with connect(db_url) as setup:
        (user,) = make_users(setup, 1)
    with (
        connect(db_url) as a,
        connect(db_url) as t,
        connect(db_url) as lock,
        connect(db_url) as watch,
    ):
        a.execute("SET plan_cache_mode = force_generic_plan")
        a.execute("SET enable_seqscan = off")
        assert claim(a, "A", 10) == []  # the plans are made now, with nothing to claim
        e2 = schedule(watch, user, 60)
        t.autocommit = False
        lock.autocommit = False
        lock_index(t, ORDER_IDX)
        with ThreadPoolExecutor(2) as pool:
            a_claim = pool.submit(claim, a, "A", 10)
            wait_until_waiting_for(watch, a.info.backend_pid, ORDER_IDX)
            e1 = schedule(t, user, 600)
            assert [r[0] for r in claim(t, "B", 10)] == [e1]
            l_lock = pool.submit(lock_index, lock, CLAIM_IDX)
            wait_until_waiting_for(watch, lock.info.backend_pid, CLAIM_IDX)
            t.commit()
            l_lock.result(timeout=WAIT)
            wait_until_waiting_for(watch, a.info.backend_pid, CLAIM_IDX)
            lock.rollback()
            rows_a = a_claim.result(timeout=WAIT)
        in_flight = watch.execute(
            "SELECT count(*) FROM nikita.scheduled_events"
            " WHERE user_id = %s AND status = 'sending'",
            (user,),
        ).fetchone()
        assert in_flight is not None
        assert e2 != e1
        return rows_a, int(in_flight[0])


def test_claim_recheck_drops_a_user_claimed_after_the_candidate_snapshot(db_url: str) -> None:
    rows_a, in_flight = claim_while_another_claim_commits(db_url)
    assert rows_a == [], "A must not claim e2 while B's claim of e1 is in flight"
    assert in_flight == 1


def test_without_the_recheck_the_forced_interleaving_claims_a_user_twice(db_url: str) -> None:
    """The test above is not vacuous: with the second statement's re-check removed (in this
    throwaway database), the same interleaving puts two events of the user in flight."""
    source = (ROOT / "functions" / "claim_events.sql").read_text()
    assert RECHECK in source, "the re-check of functions/claim_events.sql changed: update RECHECK"
    with connect(db_url) as conn:
        conn.execute("SET check_function_bodies = off")
        conn.execute(source.replace(RECHECK, "\n        RETURNING"))
    rows_a, in_flight = claim_while_another_claim_commits(db_url)
    assert len(rows_a) == 1
    assert in_flight == 2


def test_concurrent_duplicate_dedupe_key_returns_one_event(db_url: str) -> None:
    with connect(db_url) as setup:
        (user,) = make_users(setup, 1)
    sql = (
        "SELECT nikita.schedule_event(%s, 'telegram', 'follow_up', '{\"text\": \"x\"}',"
        " now(), 'race-key')"
    )
    with connect(db_url) as a, connect(db_url) as b:
        a.autocommit = False
        first = a.execute(sql, (user,)).fetchone()
        b_pid = b.info.backend_pid
        with ThreadPoolExecutor(1) as pool, connect(db_url) as watch:
            # B's insert waits on A's uncommitted row in the unique index.
            pending = pool.submit(lambda: b.execute(sql, (user,)).fetchone())
            wait_until_blocked(watch, b_pid)
            a.commit()
            second = pending.result(timeout=WAIT)
    assert first == second
    with connect(db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM nikita.scheduled_events WHERE dedupe_key = 'race-key'"
        ).fetchone() == (1,)


def test_claim_refuses_repeatable_read(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="READ COMMITTED"):
            conn.execute("SELECT * FROM nikita.claim_events('w')")
