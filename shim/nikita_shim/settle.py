"""Writing outcomes back: what the workers recorded, as complete / fail / defer statements.

The delivery loop's pump calls `settle_once()` before every claim. A batch the database refuses
as a whole (a constraint, a bad string) is written again one outcome at a time, and an outcome
refused alone is replaced by a plain permanent failure, so one event never blocks the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

import psycopg

from .connector import DbLost
from .events import ClaimedEvent, Kind, Outcome
from .metrics import Metrics
from .queue import Completion, Deferral, EventQueue, Failure

log = logging.getLogger("nikita_shim.delivery")

Result = tuple[ClaimedEvent, Outcome]


def statements(
    batch: list[Result], disabled_defer: float
) -> tuple[list[Completion], list[Failure], list[Deferral]]:
    """Each outcome as the queue call that records it (see events.Kind)."""
    completed: list[Completion] = []
    failures: list[Failure] = []
    deferrals: list[Deferral] = []
    for ev, outcome in batch:
        kind = outcome.kind
        if kind is Kind.DELIVERED:
            completed.append(Completion(ev.id, ev.lock_token, outcome.provider_ref))
        elif kind is Kind.RETRY:
            failures.append(Failure(ev.id, ev.lock_token, outcome.error or "error", True))
        elif kind in (Kind.FAILED, Kind.UNKNOWN):
            failures.append(Failure(ev.id, ev.lock_token, outcome.error or "error", False))
        elif kind is Kind.DEFERRED:
            deferrals.append(Deferral(ev.id, ev.lock_token, outcome.delay))
        elif kind is Kind.RELEASED:
            deferrals.append(Deferral(ev.id, ev.lock_token, 0.0))
        else:  # DISABLED
            deferrals.append(Deferral(ev.id, ev.lock_token, disabled_defer))
    return completed, failures, deferrals


class Settler:
    """Outcomes recorded and not yet written (`results`), and the writing of them."""

    def __init__(
        self,
        queue: EventQueue,
        metrics: Metrics,
        stopping: asyncio.Event,
        *,
        disabled_defer: float,
        on_settled: Callable[[list[Result]], None],
    ) -> None:
        self._queue = queue
        self._metrics = metrics
        self._stopping = stopping
        self._disabled_defer = disabled_defer
        self._on_settled = on_settled
        self.results: list[Result] = []
        self.ready = asyncio.Event()  # set when an outcome is added

    def add(self, ev: ClaimedEvent, outcome: Outcome) -> None:
        self.results.append((ev, outcome))
        self.ready.set()

    async def _pause(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def settle_once(self) -> bool:
        """Write every outcome recorded so far. False when the database was unavailable (the
        outcomes are kept for the next try)."""
        batch, self.results = self.results, []
        if not batch:
            return True
        completed, failures, deferrals = statements(batch, self._disabled_defer)
        try:
            done, statuses, deferred = await self._queue.settle(completed, failures, deferrals)
        except DbLost:
            self.results = batch + self.results
            return False
        except psycopg.OperationalError as exc:  # a timeout, a deadlock: try again
            log.error(
                "recording outcomes failed; retrying",
                extra={"fields": {"error": str(exc).strip().splitlines()[0][:300]}},
            )
            self.results = batch + self.results
            await self._pause(1.0)
            return False
        except psycopg.Error as exc:
            # The database refused a value of one outcome (a constraint, a bad string): write
            # them one by one so that the others are recorded and the loop goes on.
            log.error(
                "recording outcomes failed; recording them one by one",
                extra={"fields": {"error": (str(exc).strip() or repr(exc)).splitlines()[0][:300]}},
            )
            for index, item in enumerate(batch):
                if not await self._settle_alone(item):
                    self.results.extend(batch[index + 1 :])  # kept for the next try
                    return False
            return True
        self._settled(batch, (len(completed) - done) + statuses.count(None) + deferred.count(False))
        return True

    async def _settle_alone(self, item: Result) -> bool:
        ev, outcome = item
        for attempt in (outcome, None):
            if attempt is None:
                # what the database refused is replaced by a plain permanent failure
                attempt = Outcome.permanent(
                    "the outcome could not be recorded (refused by the database)"
                )
            completed, failures, deferrals = statements([(ev, attempt)], self._disabled_defer)
            try:
                done, statuses, deferred = await self._queue.settle(completed, failures, deferrals)
            except (DbLost, psycopg.OperationalError):
                self.results.append(item)
                return False
            except psycopg.Error as exc:
                log.error(
                    "outcome refused by the database",
                    extra={
                        "fields": {
                            "event_id": str(ev.id),
                            "outcome": attempt.kind.value,
                            "error": (str(exc).strip() or repr(exc)).splitlines()[0][:300],
                        }
                    },
                )
                continue
            self._settled(
                [item], (len(completed) - done) + statuses.count(None) + deferred.count(False)
            )
            return True
        # nothing could be written: the lease expires and the sweep recovers the event
        self._settled([item], 0)
        return True

    def _settled(self, batch: list[Result], lost: int) -> None:
        if lost:
            self._metrics.leases_lost.inc(lost)
            log.warning(
                "lease lost before the outcome was recorded (another worker or the sweep "
                "took the event back)",
                extra={"fields": {"count": lost}},
            )
        self._on_settled(batch)
