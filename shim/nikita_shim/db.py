"""Database access: a pool for claims and settlements, one autocommit LISTEN connection.

The connection supervisor owns both. When any operation finds the database gone, the current
generation is torn down and rebuilt with capped exponential backoff; every (re)connect runs
`sweep_events()` at once, because NOTIFYs sent while we were away are lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .events import ClaimedEvent, decode_row
from .metrics import Metrics

log = logging.getLogger("nikita_shim.db")

CHANNEL_EVENTS = "nikita_events"
CHANNEL_CONVERSATIONS = "nikita_conversations"

CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

# content as text: each row is decoded on its own (nikita_shim.events.decode_row), so a row
# that cannot be decoded fails alone instead of failing the whole claim.
CLAIM_SQL = (
    "SELECT id, lock_token, user_id, platform, event_type, content::text, scheduled_at,"
    " attempts FROM nikita.claim_events(%s, %s, make_interval(secs => %s), %s)"
)
COMPLETE_SQL = "SELECT nikita.complete_events(%s::uuid[], %s::uuid[], %s::text[])"
FAIL_SQL = "SELECT nikita.fail_event(%s, %s, %s, %s)"
DEFER_SQL = "SELECT nikita.defer_event(%s, %s, now() + make_interval(secs => %s))"
NEXT_DUE_SQL = (
    "SELECT extract(epoch FROM nikita.next_due_at() - clock_timestamp())::float8,"
    " extract(epoch FROM clock_timestamp())::float8"
)
SWEEP_SQL = "SELECT nikita.sweep_events()"
REQUIRED_FUNCTIONS = (
    "nikita.claim_events(text,integer,interval,integer)",
    "nikita.complete_events(uuid[],uuid[],text[])",
    "nikita.fail_event(uuid,uuid,text,boolean)",
    "nikita.defer_event(uuid,uuid,timestamptz)",
    "nikita.next_due_at()",
)


class DbLost(Exception):
    """The operation could not run because the database connection is gone."""


class SchemaMissing(Exception):
    """The nikita functions are not installed (run the migrations)."""


@dataclass(frozen=True, slots=True)
class Failure:
    event_id: UUID
    lock_token: UUID
    error: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class Deferral:
    event_id: UUID
    lock_token: UUID
    delay: float


@dataclass(slots=True)
class Conversation:
    """A row returned by nikita.claim_conversations(); given to the processor."""

    id: UUID
    lock_token: UUID
    user_id: UUID
    platform: str
    started_at: datetime | None
    ended_at: datetime | None
    processing_attempts: int


class Database:
    def __init__(
        self,
        url: str,
        *,
        metrics: Metrics,
        channels: Sequence[str] = (CHANNEL_EVENTS,),
        on_notify: Callable[[str, str], None] = lambda channel, payload: None,
        on_connect: Callable[[], None] = lambda: None,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        max_backoff: float = 30.0,
        application_name: str = "nikita-shim",
    ) -> None:
        self._url = url
        self._metrics = metrics
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._application_name = application_name
        self._pool: AsyncConnectionPool | None = None
        self._listener: AsyncConnection[Any] | None = None
        self._generation = 0
        self._lost = asyncio.Event()
        self._closing = asyncio.Event()
        self.connected = asyncio.Event()
        self.clock_offset = 0.0  # database clock minus local clock, seconds
        self.can_sweep = True
        self.reconnects = 0

    # ---- connection lifecycle -------------------------------------------------------------

    def _kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,
            "connect_timeout": max(1, round(self._connect_timeout)),
            "application_name": self._application_name,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }

    async def _connect_once(self) -> None:
        listener = await AsyncConnection.connect(self._url, **self._kwargs())
        try:
            for channel in self._channels:
                await listener.execute(f'LISTEN "{channel}"')
            pool = AsyncConnectionPool(
                self._url,
                min_size=min(2, self._pool_size),
                max_size=self._pool_size,
                kwargs=self._kwargs(),
                open=False,
                timeout=self._connect_timeout,
                name="nikita-shim",
                reconnect_timeout=self._connect_timeout * 4,
            )
            try:
                await pool.open(wait=True, timeout=self._connect_timeout)
            except BaseException:
                await pool.close(timeout=0)
                raise
        except BaseException:
            await listener.close()
            raise
        self._listener = listener
        self._pool = pool

    async def check_schema(self) -> None:
        """Raise SchemaMissing naming the functions that do not exist."""
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT f FROM unnest(%s::text[]) AS f WHERE to_regprocedure(f) IS NULL",
                (list(REQUIRED_FUNCTIONS),),
            )
            missing = [row[0] for row in await cur.fetchall()]
        if missing:
            raise SchemaMissing(
                "the nikita schema is not migrated (missing " + ", ".join(missing) + "): "
                "run `make migrate DATABASE_URL=...`"
            )

    async def _teardown(self) -> None:
        self.connected.clear()
        self._metrics.db_connected.set(0)
        listener, pool = self._listener, self._pool
        self._listener = self._pool = None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), 2)
            except Exception:
                log.debug("listener close failed", exc_info=True)
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(timeout=1), 5)
            except Exception:
                log.debug("pool close failed", exc_info=True)

    async def connect_until_ready(self) -> bool:
        """Connect (listener + pool) with capped exponential backoff; then sweep.

        Returns False if close() was called meanwhile.
        """
        backoff = 0.2
        attempt = 0
        while not self._closing.is_set():
            attempt += 1
            try:
                await self._connect_once()
            except CONNECTION_ERRORS as exc:
                log.warning(
                    "database unreachable; retrying",
                    extra={
                        "fields": {
                            "attempt": attempt,
                            "retry_in_s": round(backoff, 2),
                            "error": str(exc).strip().splitlines()[0][:300],
                        }
                    },
                )
                try:
                    await asyncio.wait_for(self._closing.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self._generation += 1
            self._lost.clear()
            self.connected.set()
            self._metrics.db_connected.set(1)
            if self._generation > 1:
                self.reconnects += 1
                self._metrics.db_reconnects.inc()
            log.info(
                "database connected",
                extra={"fields": {"generation": self._generation, "attempts": attempt}},
            )
            await self.sweep()
            self._on_connect()
            return True
        return False

    async def supervise(self) -> None:
        """Listen for notifications; on loss, reconnect. Runs until close()."""
        while not self._closing.is_set():
            if not self.connected.is_set() and not await self.connect_until_ready():
                return
            listen = asyncio.create_task(self._listen(), name="db-listen")
            lost = asyncio.create_task(self._lost.wait(), name="db-lost")
            closing = asyncio.create_task(self._closing.wait(), name="db-closing")
            try:
                await asyncio.wait({listen, lost, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (listen, lost, closing):
                    task.cancel()
                await asyncio.gather(listen, lost, closing, return_exceptions=True)
            if listen.done() and not listen.cancelled() and listen.exception() is not None:
                exc = listen.exception()
                if not isinstance(exc, (psycopg.Error, DbLost, OSError)):
                    # a bug, not a lost connection: crash (the service exits, systemd restarts);
                    # the pool stays open so that the shutdown can still record outcomes
                    raise exc
                log.warning(
                    "database connection lost (listener)",
                    extra={"fields": {"error": str(exc).strip().splitlines()[0][:300]}},
                )
            await self._teardown()

    async def _listen(self) -> None:
        listener = self._listener
        assert listener is not None
        async for notify in listener.notifies():
            self._on_notify(notify.channel, notify.payload)
        raise DbLost("notification stream ended")

    def lost(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation and not self._lost.is_set():
            log.warning(
                "database connection lost",
                extra={"fields": {"error": str(exc).strip().splitlines()[0][:300]}},
            )
            self.connected.clear()
            self._metrics.db_connected.set(0)
            self._lost.set()

    async def close(self) -> None:
        self._closing.set()
        await self._teardown()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        pool = self._pool
        generation = self._generation
        if pool is None or not self.connected.is_set():
            raise DbLost("not connected")
        try:
            async with pool.connection(timeout=self._connect_timeout) as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            self.lost(generation, exc)
            raise DbLost(str(exc)) from exc

    # ---- event queue ----------------------------------------------------------------------

    async def claim_events(
        self, worker: str, limit: int, lease: float, max_voice: int | None = None
    ) -> list[ClaimedEvent]:
        """Claim due events; at most `max_voice` voice events (None: no limit). A row whose
        content cannot be decoded comes back with `bad` set, to be failed permanently."""
        async with self.connection() as conn:
            cur = await conn.execute(CLAIM_SQL, (worker, limit, lease, max_voice), prepare=True)
            rows = await cur.fetchall()
        now = time.time()
        return [decode_row(row, now) for row in rows]

    async def settle(
        self,
        completed: Sequence[tuple[UUID, UUID, str | None]],
        failures: Sequence[Failure],
        deferrals: Sequence[Deferral],
    ) -> tuple[int, list[str | None], list[bool]]:
        """Record outcomes in one round of statements. Returns (completed count, new status
        per failure (None: lease lost), deferred flag per deferral)."""
        done = 0
        statuses: list[str | None] = []
        deferred: list[bool] = []
        async with self.connection() as conn:
            if completed:
                ids = [c[0] for c in completed]
                tokens = [c[1] for c in completed]
                refs = [c[2] for c in completed]
                cur = await conn.execute(COMPLETE_SQL, (ids, tokens, refs), prepare=True)
                row = await cur.fetchone()
                done = int(row[0]) if row and row[0] is not None else 0
            if failures or deferrals:
                async with conn.pipeline():
                    fail_curs = [
                        await conn.execute(
                            FAIL_SQL, (f.event_id, f.lock_token, f.error, f.retryable)
                        )
                        for f in failures
                    ]
                    defer_curs = [
                        await conn.execute(DEFER_SQL, (d.event_id, d.lock_token, d.delay))
                        for d in deferrals
                    ]
                for cur in fail_curs:
                    row = await cur.fetchone()
                    statuses.append(row[0] if row else None)
                for cur in defer_curs:
                    row = await cur.fetchone()
                    deferred.append(bool(row and row[0]))
        return done, statuses, deferred

    async def seconds_until_next_due(self) -> float | None:
        """Seconds from now (database clock) to the earliest pending event; None if none."""
        before = time.time()
        async with self.connection() as conn:
            cur = await conn.execute(NEXT_DUE_SQL, prepare=True)
            row = await cur.fetchone()
        after = time.time()
        if row is None:
            return None
        if row[1] is not None:
            self.clock_offset = float(row[1]) - (before + after) / 2
        return None if row[0] is None else float(row[0])

    async def sweep(self) -> dict[str, Any] | None:
        if not self.can_sweep:
            return None
        try:
            async with self.connection() as conn:
                cur = await conn.execute(SWEEP_SQL)
                row = await cur.fetchone()
        except DbLost:
            return None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFunction) as exc:
            self.can_sweep = False
            log.warning(
                "cannot run nikita.sweep_events(); relying on the pg_cron sweep job",
                extra={"fields": {"error": str(exc).strip().splitlines()[0]}},
            )
            return None
        except psycopg.Error as exc:  # e.g. a lock or statement timeout: try again next time
            log.warning(
                "sweep failed; retrying at the next interval",
                extra={"fields": {"error": (str(exc).strip() or repr(exc)).splitlines()[0]}},
            )
            return None
        result = row[0] if row else None
        busy = isinstance(result, dict) and any(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in result.values()
        )
        log.log(
            logging.INFO if busy else logging.DEBUG, "swept", extra={"fields": {"result": result}}
        )
        return result

    # ---- conversations --------------------------------------------------------------------

    async def claim_conversations(
        self, worker: str, limit: int, lease: float
    ) -> list[Conversation]:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT id, lock_token, user_id, platform, started_at, ended_at,"
                " processing_attempts"
                " FROM nikita.claim_conversations(%s, %s, make_interval(secs => %s))",
                (worker, limit, lease),
            )
            rows = await cur.fetchall()
        return [Conversation(*row) for row in rows]

    async def complete_conversation(
        self, conv: Conversation, summary: str | None, emotional_tone: str | None
    ) -> bool:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT nikita.complete_conversation(%s, %s, %s, %s)",
                (conv.id, conv.lock_token, summary, emotional_tone),
            )
            row = await cur.fetchone()
        return bool(row and row[0])

    async def fail_conversation(self, conv: Conversation, error: str) -> str | None:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT nikita.fail_conversation(%s, %s, %s)", (conv.id, conv.lock_token, error)
            )
            row = await cur.fetchone()
        return row[0] if row else None


async def fetch_health(
    url: str, connect_timeout: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of nikita.queue_health and nikita.job_health (for status/check)."""
    from psycopg.rows import dict_row

    async with await AsyncConnection.connect(
        url, autocommit=True, connect_timeout=max(1, round(connect_timeout)), row_factory=dict_row
    ) as conn:
        queue = await (
            await conn.execute("SELECT * FROM nikita.queue_health ORDER BY 1")
        ).fetchall()
        jobs = await (await conn.execute("SELECT * FROM nikita.job_health ORDER BY 1")).fetchall()
    return list(queue), list(jobs)
