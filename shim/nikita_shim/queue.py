"""The event queue's operations, over the connector: claim, settle, next due time, sweep.

Statements come from queries.py; rows are read by column name (psycopg row factories).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row, kwargs_row

from . import queries
from .connector import Connector, DbLost, scalar
from .events import ClaimedEvent, decode_event

log = logging.getLogger("nikita_shim.db")


@dataclass(frozen=True, slots=True)
class Completion:
    event_id: UUID
    lock_token: UUID
    provider_ref: str | None


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


class EventQueue:
    def __init__(self, connector: Connector) -> None:
        self._db = connector
        self.connected = connector.connected
        self.clock_offset = 0.0  # database clock minus local clock, seconds
        self.can_sweep = True

    async def claim_events(
        self, worker: str, limit: int, lease: float, max_voice: int | None = None
    ) -> list[ClaimedEvent]:
        """Claim due events; at most `max_voice` voice events (None: no limit). A row whose
        content cannot be decoded comes back with `bad` set, to be failed permanently."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                queries.CLAIM_EVENTS, (worker, limit, lease, max_voice), prepare=True
            )
            cur.row_factory = kwargs_row(partial(decode_event, claimed_at=time.time()))
            return await cur.fetchall()

    async def settle(
        self,
        completed: Sequence[Completion],
        failures: Sequence[Failure],
        deferrals: Sequence[Deferral],
    ) -> tuple[int, list[str | None], list[bool]]:
        """Record outcomes in one round of statements. Returns (completed count, new status
        per failure (None: lease lost), deferred flag per deferral)."""
        done = 0
        statuses: list[str | None] = []
        deferred: list[bool] = []
        async with self._db.connection() as conn:
            if completed:
                ids = [c.event_id for c in completed]
                tokens = [c.lock_token for c in completed]
                refs = [c.provider_ref for c in completed]
                cur = await conn.execute(queries.COMPLETE_EVENTS, (ids, tokens, refs), prepare=True)
                done = scalar(await cur.fetchone()) or 0
            if failures or deferrals:
                async with conn.pipeline():
                    fail_curs = [
                        await conn.execute(
                            queries.FAIL_EVENT, (f.event_id, f.lock_token, f.error, f.retryable)
                        )
                        for f in failures
                    ]
                    defer_curs = [
                        await conn.execute(queries.DEFER_EVENT, (d.event_id, d.lock_token, d.delay))
                        for d in deferrals
                    ]
                for cur in fail_curs:
                    statuses.append(scalar(await cur.fetchone()))
                for cur in defer_curs:
                    deferred.append(bool(scalar(await cur.fetchone())))
        return int(done), statuses, deferred

    async def seconds_until_next_due(self) -> float | None:
        """Seconds from now (database clock) to the earliest pending event; None if none."""
        before = time.time()
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(queries.NEXT_DUE, prepare=True)
            row = await cur.fetchone()
        after = time.time()
        if row is None:
            return None
        if row["db_now"] is not None:
            self.clock_offset = float(row["db_now"]) - (before + after) / 2
        return None if row["due_in_s"] is None else float(row["due_in_s"])

    async def queue_health(self) -> list[dict[str, Any]]:
        """Rows of nikita.queue_health, by column name (metrics)."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(queries.QUEUE_HEALTH)
            return await cur.fetchall()

    async def job_health(self) -> list[dict[str, Any]]:
        """Rows of nikita.job_health, by column name (metrics)."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(queries.JOB_HEALTH)
            return await cur.fetchall()

    async def sweep(self) -> dict[str, Any] | None:
        if not self.can_sweep:
            return None
        try:
            async with self._db.connection() as conn:
                cur = await conn.execute(queries.SWEEP_EVENTS)
                result = scalar(await cur.fetchone())
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
        busy = isinstance(result, dict) and any(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in result.values()
        )
        log.log(
            logging.INFO if busy else logging.DEBUG, "swept", extra={"fields": {"result": result}}
        )
        return result
