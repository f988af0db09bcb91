"""Connection supervision: one autocommit LISTEN connection and a pool, kept connected.

The connector knows nothing of events or conversations (queue.py, conversation_store.py run
those operations through `connection()`). When any operation finds the database gone, the
current generation is torn down and rebuilt with capped exponential backoff; every
(re)connect calls `on_connect` (the service sweeps at once there, because NOTIFYs sent while
we were away are lost, and wakes its loops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from . import queries, schema_version
from .metrics import Metrics

log = logging.getLogger("nikita_shim.db")

CHANNEL_EVENTS = "nikita_events"
CHANNEL_CONVERSATIONS = "nikita_conversations"

CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class DbLost(Exception):
    """The operation could not run because the database connection is gone."""


class SchemaMissing(Exception):
    """The nikita functions are not installed, or by another package version (run migrate)."""


class Connector:
    """The listener and the pool of one database, kept connected."""

    def __init__(
        self,
        url: str,
        *,
        metrics: Metrics,
        channels: Sequence[str] = (CHANNEL_EVENTS,),
        on_notify: Callable[[str, str], None] = lambda channel, payload: None,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        max_backoff: float = 30.0,
        application_name: str = "nikita-shim",
        session_settings: Mapping[str, str] | None = None,
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
        # set on the pool's connections at connect (libpq options), e.g.
        # nikita.telegram_durability (docs/shim.md, "Telegram durability")
        self._session_settings = dict(session_settings or {})
        self._pool: AsyncConnectionPool | None = None
        self._listener: AsyncConnection[Any] | None = None
        self._generation = 0
        self._lost = asyncio.Event()
        self._closing = asyncio.Event()
        self.connected = asyncio.Event()
        self.reconnects = 0

    # ---- connection lifecycle -------------------------------------------------------------

    def _kwargs(self, *, pool: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(self._connect_timeout)),
            "application_name": self._application_name,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        if pool and self._session_settings:
            kwargs["options"] = " ".join(
                f"-c {name}={value}" for name, value in self._session_settings.items()
            )
        return kwargs

    async def _connect_once(self) -> None:
        listener = await AsyncConnection.connect(self._url, **self._kwargs())
        try:
            for channel in self._channels:
                await listener.execute(f'LISTEN "{channel}"')
            pool = AsyncConnectionPool(
                self._url,
                min_size=min(2, self._pool_size),
                max_size=self._pool_size,
                kwargs=self._kwargs(pool=True),
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
        """Raise SchemaMissing naming the functions that do not exist, or the package version
        the database was migrated with when it is not ours."""
        async with self.connection() as conn:
            cur = await conn.execute(queries.MISSING_FUNCTIONS, (list(queries.REQUIRED_FUNCTIONS),))
            missing = [row[0] for row in await cur.fetchall()]
            found = None if missing else await schema_version.fetch(conn)
        if missing:
            raise SchemaMissing(
                "the nikita schema is not migrated (missing " + ", ".join(missing) + "): "
                f"run `{schema_version.FIX}` (or `make migrate DATABASE_URL=...` in a checkout)"
            )
        problem = schema_version.mismatch(found)
        if problem:
            raise SchemaMissing(problem)

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
        """Connect (listener + pool) with capped exponential backoff; then on_connect.

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
            if self._on_connect is not None:
                await self._on_connect()  # the sweep and the wake-ups
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


def scalar(row: Sequence[Any] | None) -> Any:
    """The one value of a `SELECT f(...)` row (None: no row)."""
    return row[0] if row else None
