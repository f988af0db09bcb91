"""The delivery loop: claim due events, deliver them with bounded concurrency, settle them.

Two kinds of task cooperate through plain in-memory state (all on one event loop):
- the pump alternates between the database's two jobs: it first writes back every outcome
  recorded so far (complete_events for successes in one statement, one pipeline for failures
  and deferrals), then claims a batch if there is room. Settling before claiming frees the
  users whose event just settled, and keeps the two statements from contending with each
  other in the database (measured: running them concurrently was 4x slower).
  When nothing is claimable it waits for whichever comes first of a NOTIFY, the next due
  time (a timer), an outcome to write, and the fallback poll;
- `concurrency` workers take claimed Telegram events from a queue and call the transport;
  `voice_concurrency` workers do the same for voice calls. Voice events are claimed only up to
  the number of idle voice workers (claim_events' p_max_voice), so a claimed call starts at
  once and a crash can leave "outcome unknown" only for calls that may really exist.
An event counts as in flight from its claim until its outcome is written.

No exception from one event stops the loop: an event that cannot be decoded or whose delivery
raises is failed permanently with the reason. An exception that escapes a task itself is a
bug: the task ends, and the service (service.Shim) logs it and exits non-zero.

Over 300 lines on purpose: pump, workers and drain share one in-flight state (claimed events,
voice slots, called set, disabled platforms) whose invariants are easier to check in one
class; writing outcomes back (settle.py) and the SQL (queue.py) are apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import psycopg

from .config import Config
from .connector import DbLost
from .events import ClaimedEvent, Kind, Outcome
from .metrics import Metrics
from .queue import EventQueue
from .redact import Redactor
from .settle import Result, Settler
from .transports import DeliveryContext, Transport

log = logging.getLogger("nikita_shim.delivery")

# An event still queued this close to the end of its lease is released, not delivered: at
# most 30 s, at most half the lease.
LEASE_SAFETY = 30.0
MIN_BLOCKED_WAIT = 0.002
PROVIDER_REF_LIMIT = 1024  # the column's limit (bounds, 0009): cut, never refused


def parse_notify_time(payload: str) -> float | None:
    """Epoch seconds of a nikita_events payload (ISO 8601); None when unparsable."""
    text = payload.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1)).timestamp()
    except ValueError:
        return None


class DeliveryLoop:
    def __init__(
        self,
        cfg: Config,
        queue: EventQueue,
        transports: Mapping[str, Transport],
        metrics: Metrics,
        stopping: asyncio.Event,
    ) -> None:
        self._cfg = cfg
        self._db = queue
        self._transports = dict(transports)
        self._metrics = metrics
        self._stopping = stopping
        self._redact = Redactor(cfg.secrets)
        self._batch = cfg.batch_size
        self._max_in_flight = max(cfg.batch_size * 2, cfg.concurrency)
        self._queue: asyncio.Queue[ClaimedEvent | None] = asyncio.Queue()
        self._voice_queue: asyncio.Queue[ClaimedEvent | None] = asyncio.Queue()
        # voice events claimed whose outcome is not recorded yet (queued or calling)
        self._voice_busy: set[UUID] = set()
        self._in_flight: dict[UUID, ClaimedEvent] = {}
        self._called: set[UUID] = set()
        self._settler = Settler(
            queue, metrics, stopping, disabled_defer=cfg.disabled_defer, on_settled=self._settled
        )
        self._signal = asyncio.Event()
        self._due_now = True
        self._hint: float | None = None
        self._disabled: dict[str, str] = {}
        self._disabled_logged: dict[str, float] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._voice_workers: list[asyncio.Task[None]] = []
        self._pump: asyncio.Task[None] | None = None
        self.delivered = 0

    # ---- wake-ups -------------------------------------------------------------------------

    def on_notify(self, payload: str) -> None:
        """A nikita_events notification: due now wakes the claimer, future arms the timer."""
        when = parse_notify_time(payload)
        if when is None or when - self._db.clock_offset <= time.time():
            self._due_now = True
        else:
            local = when - self._db.clock_offset
            if self._hint is None or local < self._hint:
                self._hint = local
        self._signal.set()

    def wake(self) -> None:
        self._due_now = True
        self._signal.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(self._queue), name=f"deliver-{i}")
            for i in range(self._cfg.concurrency)
        ]
        self._voice_workers = [
            asyncio.create_task(self._worker(self._voice_queue), name=f"call-{i}")
            for i in range(self._cfg.voice_concurrency)
        ]
        self._pump = asyncio.create_task(self._pump_loop(), name="pump")

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The long-lived tasks: none may end before shutdown."""
        pump = [self._pump] if self._pump is not None else []
        return pump + self._workers + self._voice_workers

    @property
    def voice_slots(self) -> int:
        """Voice calls that could start right now (idle voice workers)."""
        return max(0, self._cfg.voice_concurrency - len(self._voice_busy))

    async def drain(self) -> None:
        """After `stopping` is set: stop claiming, finish deliveries that already called their
        transport (up to the shutdown timeout), release everything else, write all outcomes."""
        self._signal.set()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        for _ in self._workers:
            self._queue.put_nowait(None)
        for _ in self._voice_workers:
            self._voice_queue.put_nowait(None)
        workers = self._workers + self._voice_workers
        if workers:
            _, pending = await asyncio.wait(workers, timeout=self._cfg.shutdown_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if pending:
                log.warning(
                    "shutdown timeout: deliveries interrupted",
                    extra={"fields": {"interrupted": len(pending)}},
                )
        # whatever is claimed and has no outcome yet was interrupted or never started
        recorded = {ev.id for ev, _ in self._settler.results}
        for ev in list(self._in_flight.values()):
            if ev.id in recorded:
                continue
            if ev.id in self._called and ev.platform == "voice":
                outcome = Outcome.unknown("interrupted by shutdown while calling")
            else:
                outcome = Outcome.release("interrupted by shutdown")
            self._record(ev, outcome, -1.0, 0.0)
        deadline = time.monotonic() + 10
        while self._settler.results and time.monotonic() < deadline:
            if not self._db.connected.is_set():
                try:
                    await asyncio.wait_for(self._db.connected.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
            if not await self._settler.settle_once():
                await asyncio.sleep(0.1)
        if self._settler.results:
            log.error(
                "could not record outcomes at shutdown (database unreachable); "
                "their leases will expire and the sweep recovers them",
                extra={"fields": {"unrecorded": len(self._settler.results)}},
            )

    # ---- claimer --------------------------------------------------------------------------

    async def _wait_for(self, event: asyncio.Event, seconds: float | None = None) -> None:
        """Wait for `event` or shutdown, whichever first."""
        if event.is_set() or self._stopping.is_set():
            return
        waiters = {
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _pump_loop(self) -> None:
        blocked_wait = MIN_BLOCKED_WAIT
        error_wait = 0.5
        while not self._stopping.is_set():
            if not self._db.connected.is_set():
                await self._wait_for(self._db.connected)
                continue
            if self._settler.results:
                await self._settler.settle_once()
                continue
            room = self._max_in_flight - len(self._in_flight)
            if room <= 0:
                self._settler.ready.clear()
                await self._wait_for(self._settler.ready)
                continue
            limit = min(self._batch, room)
            self._due_now = False
            try:
                events = await self._db.claim_events(
                    self._cfg.worker_id, limit, self._cfg.lease_seconds, self.voice_slots
                )
            except DbLost:
                self._due_now = True
                continue
            except psycopg.Error as exc:
                log.error(
                    "claim_events failed",
                    extra={"fields": {"error": str(exc).strip().splitlines()[0][:300]}},
                )
                await self._wait_for(asyncio.Event(), error_wait)
                error_wait = min(error_wait * 2, self._cfg.reconnect_max_backoff)
                self._due_now = True
                continue
            error_wait = 0.5
            if events:
                blocked_wait = MIN_BLOCKED_WAIT
                for ev in events:
                    self._in_flight[ev.id] = ev
                    if ev.bad is not None:
                        # never handed to a transport: failed with the reason, loop goes on
                        self._record(ev, Outcome.permanent(f"undecodable event: {ev.bad}"), -1, 0)
                    elif ev.platform == "voice":
                        self._voice_busy.add(ev.id)
                        self._voice_queue.put_nowait(ev)
                    else:
                        self._queue.put_nowait(ev)
                self._metrics.in_flight.set(len(self._in_flight))
                if self._cfg.test_fault == "pump":
                    raise RuntimeError("injected fault in the pump (NIKITA_SHIM_TEST_FAULT=pump)")
                if len(events) == limit:
                    # there may be more due right now: claim again at once, while the workers
                    # deliver this batch (yielding first made them deliver it all before the
                    # next claim: drain -20 %, docs/shim.md "Performance")
                    continue
                # a short batch (a due-now event): the woken workers call their transports
                # before this task sends its next statement
                await asyncio.sleep(0)
            if self._due_now or self._settler.results:
                continue
            try:
                due_in = await self._db.seconds_until_next_due()
            except DbLost:
                continue
            except psycopg.Error as exc:
                log.error("next_due_at failed", extra={"fields": {"error": str(exc)[:300]}})
                due_in = None
            now = time.time()
            deadline = now + self._cfg.poll_interval
            if due_in is not None:
                if due_in <= 0.0005:
                    # due, but not claimable now: its user has an event in flight (ours or
                    # another shim's) or clocks disagree slightly; our own outcomes wake us
                    deadline = min(deadline, now + blocked_wait)
                    blocked_wait = min(blocked_wait * 2, self._cfg.blocked_poll)
                else:
                    deadline = min(deadline, now + due_in)
                    blocked_wait = MIN_BLOCKED_WAIT
            await self._idle_wait(deadline)

    async def _idle_wait(self, deadline: float) -> None:
        while not self._stopping.is_set() and not self._due_now and not self._settler.results:
            target = deadline if self._hint is None else min(deadline, self._hint)
            remaining = target - time.time()
            if remaining <= 0:
                break
            self._signal.clear()
            if self._due_now or self._stopping.is_set() or self._settler.results:
                break
            try:
                await asyncio.wait_for(self._signal.wait(), remaining)
            except TimeoutError:
                break
        if self._hint is not None and self._hint <= time.time():
            self._hint = None

    # ---- workers --------------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[ClaimedEvent | None]) -> None:
        while True:
            ev = await queue.get()
            if ev is None:
                return
            called_at = -1.0

            def on_call(ev: ClaimedEvent = ev) -> None:
                nonlocal called_at
                called_at = time.time()
                self._called.add(ev.id)

            started = time.time()
            outcome = await self._deliver(ev, DeliveryContext(self._stopping, on_call))
            try:
                self._record(ev, outcome, called_at, time.time() - started)
            except Exception as exc:  # e.g. an outcome that cannot be logged: fail the event
                log.exception(
                    "recording an outcome raised", extra={"fields": {"event_id": str(ev.id)}}
                )
                self._record(
                    ev,
                    Outcome.permanent(f"outcome not recordable: {type(exc).__name__}"),
                    called_at,
                    0.0,
                )

    async def _deliver(self, ev: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        if self._stopping.is_set():
            return Outcome.release()
        reason = self._disabled.get(ev.platform)
        if reason is not None:
            return Outcome.disabled(reason)
        transport = self._transports.get(ev.platform)
        if transport is None:
            return Outcome.disabled(f"no transport configured for platform {ev.platform!r}")
        lease = self._cfg.lease_seconds
        if time.time() > ev.claimed_at + lease - min(LEASE_SAFETY, lease / 2):
            return Outcome.release("lease nearly expired before delivery started")
        try:
            return await transport.deliver(ev, ctx)
        except Exception as exc:
            # An event the transport cannot handle (RecursionError on a deeply nested markup,
            # a TypeError on an odd value...) fails permanently: retrying cannot fix it, and
            # it must never stop the worker.
            log.exception("transport raised", extra={"fields": {"event_id": str(ev.id)}})
            error = f"{type(exc).__name__}: {exc}"
            if ev.platform == "voice" and ev.id in self._called:
                return Outcome.unknown(error)
            return Outcome.permanent(f"cannot deliver: {error}")

    def _record(
        self, ev: ClaimedEvent, outcome: Outcome, called_at: float, duration: float
    ) -> None:
        self._called.discard(ev.id)
        self._voice_busy.discard(ev.id)
        if outcome.error or outcome.provider_ref:
            outcome = Outcome(
                outcome.kind,
                self._redact.error(outcome.provider_ref, PROVIDER_REF_LIMIT)
                if outcome.provider_ref
                else None,
                self._redact.error(outcome.error) if outcome.error else None,
                outcome.delay,
            )
        if outcome.kind is Kind.DISABLED:
            self._disable(ev.platform, outcome.error or "disabled")
        lateness = (
            called_at + self._db.clock_offset - ev.scheduled_at.timestamp()
            if called_at > 0
            else -1.0
        )
        self._metrics.delivery(ev.platform, outcome.kind.value, lateness, duration)
        if outcome.kind is Kind.DELIVERED:
            self.delivered += 1
        if log.isEnabledFor(logging.INFO):
            # log.info() without its caller lookup (a stack walk per line, which no formatter
            # prints): the record goes through the same handlers, formatters and redaction.
            log.handle(
                log.makeRecord(
                    log.name,
                    logging.INFO,
                    __file__,
                    0,
                    "delivery",
                    (),
                    None,
                    extra={
                        "fields": {
                            "event_id": str(ev.id),
                            "platform": ev.platform,
                            "type": ev.event_type,
                            "attempt": ev.attempts,
                            "lateness_ms": round(lateness * 1000, 1) if lateness >= 0 else None,
                            "duration_ms": round(duration * 1000, 1),
                            "outcome": outcome.kind.value,
                            "provider_ref": outcome.provider_ref,
                            "defer_s": (
                                round(outcome.delay, 3) if outcome.kind is Kind.DEFERRED else None
                            ),
                            "error": outcome.error,
                        }
                    },
                )
            )
        self._settler.add(ev, outcome)
        self._signal.set()

    def _disable(self, platform: str, reason: str) -> None:
        now = time.time()
        if platform not in self._disabled:
            self._disabled[platform] = reason
            self._metrics.platform_disabled.labels(platform).set(1)
        if now - self._disabled_logged.get(platform, 0.0) > 60:
            self._disabled_logged[platform] = now
            log.error(
                "platform disabled: its events are deferred, not delivered",
                extra={
                    "fields": {
                        "platform": platform,
                        "reason": reason,
                        "defer_s": self._cfg.disabled_defer,
                    }
                },
            )

    def _settled(self, batch: list[Result]) -> None:
        for ev, _ in batch:
            self._in_flight.pop(ev.id, None)
        self._metrics.in_flight.set(len(self._in_flight))
        self._due_now = True  # a settled event may unblock its user's next one
