"""Wiring of `nikita-shim run`: transports, database, delivery loop, systemd, metrics.

Every long-lived task (listener, pump, workers, sweeper, conversation loop, metrics, watchdog)
must run until shutdown. One that ends earlier, with an exception or not, is a bug the
process cannot recover from in place: it is logged with its traceback, the watchdog is no
longer fed, and `run()` returns EXIT_CRASH so that systemd (Restart=always) restarts the shim.
Over 300 lines: the optional loops (conversations, summary writer) are wired here, each in a
few lines, so that start, wake-up, watchdog and drain stay in one place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping

from .config import Config
from .connector import CHANNEL_CONVERSATIONS, CHANNEL_EVENTS, Connector, DbLost, SchemaMissing
from .conversation_store import ConversationStore
from .conversations import ConversationLoop, Processor
from .health import job_failing
from .loop import DeliveryLoop
from .metrics import Metrics
from .queue import EventQueue
from .redact import safe_conninfo
from .summaries import CHANNEL_SUMMARIES, SummaryLoop, Writer
from .summary_store import SummaryStore
from .systemd import SystemdNotifier
from .transports import Transport
from .transports.build import build_transports

log = logging.getLogger("nikita_shim")

EXIT_CRASH = 1
EXIT_SCHEMA = 3
METRICS_REFRESH = 15.0


def _safe_database(url: str) -> str:
    try:
        return safe_conninfo(url)
    except Exception:  # validated at start; never print the raw string
        return "(unparsable)"


class Shim:
    """One running shim. `run()` returns the process exit code."""

    def __init__(
        self,
        cfg: Config,
        *,
        transports: Mapping[str, Transport] | None = None,
        processor: Processor | None = None,
        writer: Writer | None = None,
        notifier: SystemdNotifier | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.notifier = notifier or SystemdNotifier()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.transports = dict(transports) if transports is not None else build_transports(cfg)
        channels = [CHANNEL_EVENTS] + ([CHANNEL_CONVERSATIONS] if processor else [])
        channels += [CHANNEL_SUMMARIES] if writer else []
        self.db = Connector(
            cfg.database_url,
            metrics=self.metrics,
            channels=channels,
            on_notify=self._on_notify,
            on_connect=self._on_connect,
            pool_size=cfg.pool_size,
            connect_timeout=cfg.connect_timeout,
            max_backoff=cfg.reconnect_max_backoff,
            application_name=f"nikita-shim {cfg.worker_id}"[:63],
            session_settings=(
                {"nikita.telegram_durability": "async"}
                if cfg.telegram_durability == "async"
                else None
            ),
        )
        self.queue = EventQueue(self.db)
        self.delivery = DeliveryLoop(cfg, self.queue, self.transports, self.metrics, self.stopping)
        self.conversations = (
            ConversationLoop(
                cfg, ConversationStore(self.db), processor, self.metrics, self.stopping
            )
            if processor
            else None
        )
        self.summaries = (
            SummaryLoop(cfg, SummaryStore(self.db), writer, self.stopping) if writer else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.crashed: str | None = None  # the name of the task that crashed

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: no new claims; finishing deliveries in flight")
            self.stopping.set()

    def _on_notify(self, channel: str, payload: str) -> None:
        if self.cfg.test_fault == "listener":
            raise RuntimeError("injected fault in the listener (NIKITA_SHIM_TEST_FAULT=listener)")
        if channel == CHANNEL_EVENTS:
            self.delivery.on_notify(payload)
        elif channel == CHANNEL_CONVERSATIONS and self.conversations is not None:
            self.conversations.wake()
        elif channel == CHANNEL_SUMMARIES and self.summaries is not None:
            self.summaries.wake()

    async def _on_connect(self) -> None:
        await self.queue.sweep()  # NOTIFYs sent while disconnected are lost
        self.delivery.wake()
        if self.conversations is not None:
            self.conversations.wake()
        if self.summaries is not None:
            self.summaries.wake()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the time elapsed."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _sweeper(self) -> None:
        while await self._sleep(self.cfg.sweep_interval):
            if self.db.connected.is_set():
                await self.queue.sweep()
                if self.cfg.test_fault == "sweeper":
                    raise RuntimeError(
                        "injected fault in the sweeper (NIKITA_SHIM_TEST_FAULT=sweeper)"
                    )

    def core_tasks(self) -> list[asyncio.Task[None]]:
        tasks = [self._supervisor] if self._supervisor is not None else []
        tasks += self.delivery.tasks
        if self.conversations is not None:
            tasks += self.conversations.tasks
        if self.summaries is not None:
            tasks += self.summaries.tasks
        return tasks + self._tasks

    async def _watchdog(self, interval: float) -> None:
        while await self._sleep(interval):
            # fed only while every core task is alive: a dead one must lead to a restart
            if self.crashed is None and not any(t.done() for t in self.core_tasks()):
                self.notifier.watchdog()

    async def _until_stop_or_crash(self) -> asyncio.Task[None] | None:
        """Wait for shutdown; return the first core task that ended before it, if any."""
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                tasks = self.core_tasks()
                done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
                ended = [t for t in tasks if t in done]
                crashed = [
                    t
                    for t in ended
                    if t.cancelled() or t.exception() is not None or not self.stopping.is_set()
                ]
                if crashed:
                    return crashed[0]
                if stop in done:
                    return None
        finally:
            stop.cancel()

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        name = task.get_name()
        self.crashed = name
        for t in self._tasks:
            if t.get_name() == "watchdog":
                t.cancel()  # no WATCHDOG=1 from now on
        exc = None if task.cancelled() else task.exception()
        log.critical(
            "core task crashed: exiting so that the service is restarted",
            exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
            extra={
                "fields": {
                    "task": name,
                    "error": f"{type(exc).__name__}: {exc}" if exc else "ended unexpectedly",
                    "exit_code": EXIT_CRASH,
                }
            },
        )
        self.notifier.status(f"crashed: task {name} failed; exiting with {EXIT_CRASH}")

    async def _refresh_metrics(self) -> None:
        # Every replica exports the same cluster-wide gauges; rules aggregate with max().
        while True:
            if self.db.connected.is_set():
                try:
                    for row in await self.queue.queue_health():
                        p = row["platform"]
                        self.metrics.queue_pending.labels(p).set(row.get("pending") or 0)
                        self.metrics.queue_due.labels(p).set(row.get("due_now") or 0)
                        self.metrics.queue_lag.labels(p).set(row.get("oldest_due_lag_s") or 0)
                    for row in await self.queue.job_health():
                        self.metrics.job_overdue.labels(row["job_name"]).set(bool(row["overdue"]))
                        self.metrics.job_failing.labels(row["job_name"]).set(job_failing(row))
                except DbLost:
                    pass
                except Exception as exc:
                    log.warning(
                        "queue_health refresh failed", extra={"fields": {"error": str(exc)[:200]}}
                    )
            if not await self._sleep(METRICS_REFRESH):
                return

    async def run(self) -> int:
        cfg = self.cfg
        started = time.monotonic()
        log.info(
            "starting",
            extra={
                "fields": {
                    "worker": cfg.worker_id,
                    "telegram": cfg.telegram_transport,
                    "voice": cfg.voice_transport,
                    "batch": cfg.batch_size,
                    "concurrency": cfg.concurrency,
                    "voice_concurrency": cfg.voice_concurrency,
                    # the loop really running (runtime.run picks it from NIKITA_SHIM_EVENT_LOOP)
                    "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
                    "telegram_durability": cfg.telegram_durability,
                    "database": _safe_database(cfg.database_url),
                    "pid": os.getpid(),
                }
            },
        )
        if cfg.metrics_port:
            self.metrics.serve(cfg.metrics_port, cfg.metrics_host)
            log.info(
                "metrics",
                extra={"fields": {"url": f"http://{cfg.metrics_host}:{cfg.metrics_port}/metrics"}},
            )
        for platform, transport in self.transports.items():
            await transport.start()
            log.info(
                "transport", extra={"fields": {"platform": platform, "transport": transport.name}}
            )
        for platform in ("telegram", "voice"):
            if platform not in self.transports:
                log.warning(
                    "no transport for platform: its events are deferred, not delivered",
                    extra={"fields": {"platform": platform}},
                )
        if cfg.test_fault:
            log.warning(
                "TEST FAULT INJECTION enabled: a core task will fail on purpose",
                extra={"fields": {"task": cfg.test_fault}},
            )
        try:
            if not await self._connect():
                return 0
            try:
                await self.db.check_schema()
            except SchemaMissing as exc:
                log.error(str(exc))
                return EXIT_SCHEMA
            self._supervisor = asyncio.create_task(self.db.supervise(), name="listener")
            self.delivery.start()
            if self.conversations is not None:
                self.conversations.start()
            if self.summaries is not None:
                self.summaries.start()
            if cfg.sweep_interval > 0:
                self._tasks.append(asyncio.create_task(self._sweeper(), name="sweeper"))
            if self.notifier.watchdog_interval:
                self._tasks.append(
                    asyncio.create_task(
                        self._watchdog(self.notifier.watchdog_interval), name="watchdog"
                    )
                )
            if cfg.metrics_port:
                self._tasks.append(asyncio.create_task(self._refresh_metrics(), name="metrics"))
            self.notifier.ready(f"delivering as {cfg.worker_id}")
            self.ready.set()
            log.info(
                "ready",
                extra={"fields": {"startup_ms": round((time.monotonic() - started) * 1000)}},
            )
            crashed = await self._until_stop_or_crash()
            if crashed is not None:
                self._report_crash(crashed)
            self.stopping.set()
            self.notifier.stopping()
            try:
                # best effort after a crash: release what was claimed, write what is known
                await asyncio.wait_for(self._drain(), cfg.shutdown_timeout + 15)
            except Exception:
                if crashed is None:
                    raise
                log.exception("drain after the crash failed; leases will expire")
            return EXIT_CRASH if crashed is not None else 0
        finally:
            self.stopping.set()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.db.close()
            if self._supervisor is not None:
                self._supervisor.cancel()
                await asyncio.gather(self._supervisor, return_exceptions=True)
            for transport in self.transports.values():
                await transport.close()
            log.info("stopped", extra={"fields": {"delivered": self.delivery.delivered}})

    async def _drain(self) -> None:
        await self.delivery.drain()
        if self.conversations is not None:
            await self.conversations.drain()
        if self.summaries is not None:
            await self.summaries.drain()

    async def _connect(self) -> bool:
        connect = asyncio.create_task(self.db.connect_until_ready())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({connect, stop}, return_when=asyncio.FIRST_COMPLETED)
        if connect.done():
            stop.cancel()
            return connect.result()
        await self.db.close()
        await asyncio.gather(connect, return_exceptions=True)
        return False


async def run_with_signals(shim: Shim) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shim.stop)
    try:
        return await shim.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
