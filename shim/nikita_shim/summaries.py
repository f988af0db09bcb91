"""Optional host for a daily-summary writer (Nikita's voice), beside the summary job.

`--summary-writer module:function` (or NIKITA_SHIM_SUMMARY_WRITER) names an async callable. It
is given a `SummaryDay` (the job's facts of one player's local day, including its factual
`summary_text`) and returns the recap: a string, a mapping with "text" (and optionally
"emotional_tone"), an object with those attributes, or a (text, tone) tuple. The result is
recorded with `complete_summary` beside the factual text, which is never replaced. A writer
that raises, returns no usable text (blank, over 8,000 characters, a tone blank or over 200)
or outlives NIKITA_SHIM_SUMMARY_TIMEOUT fails the attempt (`fail_summary`, retried by the
database up to summary_writer_max_attempts, then `failed`): the factual text stays.
The design mirrors conversations.py (claim under a lease, bounded concurrency, NOTIFY or poll).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from .blank import is_blank
from .config import Config
from .connector import DbLost
from .summary_store import SummaryDay, SummaryStore

log = logging.getLogger("nikita_shim.summaries")

CHANNEL_SUMMARIES = "nikita_summaries"
MAX_TEXT = 8000  # daily_summaries.nikita_summary_text (sql/0015)
MAX_TONE = 200

Writer = Callable[[SummaryDay], Awaitable[Any]]


class WriterError(Exception):
    pass


def load_writer(spec: str) -> Writer:
    """Import `module:function` (an async callable); WriterError says why not."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise WriterError(f"--summary-writer {spec!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise WriterError(
            f"--summary-writer {spec!r}: cannot import {module_name} ({exc})"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise WriterError(f"--summary-writer {spec!r}: {module_name} has no {attr}")
    call = getattr(target, "__call__", None)  # noqa: B004 (async callable objects)
    if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call)):
        raise WriterError(f"--summary-writer {spec!r}: {attr} must be an async callable")
    return target


def writer_result(result: Any) -> tuple[str, str | None]:
    """(text, tone) from what the writer returned; ValueError when it is not usable."""
    if isinstance(result, str):
        text, tone = result, None
    elif isinstance(result, tuple) and len(result) == 2:
        text, tone = result
    elif isinstance(result, dict):
        text, tone = result.get("text"), result.get("emotional_tone")
    else:
        text, tone = getattr(result, "text", None), getattr(result, "emotional_tone", None)
    if not isinstance(text, str) or is_blank(text):
        raise ValueError(f"writer returned no text ({type(result).__name__})")
    if len(text) > MAX_TEXT:
        raise ValueError(f"writer text has {len(text)} characters (at most {MAX_TEXT})")
    if tone is not None and (not isinstance(tone, str) or is_blank(tone) or len(tone) > MAX_TONE):
        raise ValueError(f"writer emotional_tone must be a label of 1..{MAX_TONE} characters")
    return text, tone


class SummaryLoop:
    def __init__(
        self,
        cfg: Config,
        store: SummaryStore,
        writer: Writer,
        stopping: asyncio.Event,
    ) -> None:
        self._cfg = cfg
        self._db = store
        self._writer = writer
        self._stopping = stopping
        self._signal = asyncio.Event()
        self._due = True
        self._active: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._due = True
        self._signal.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="summaries")

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The long-lived task (the claimer); writing tasks are per day."""
        return [self._task] if self._task is not None else []

    async def _run(self) -> None:
        limit = self._cfg.summary_concurrency
        while not self._stopping.is_set():
            if not self._db.connected.is_set():
                await asyncio.sleep(0.2)
                continue
            room = limit - len(self._active)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            self._due = False
            want = min(room, self._cfg.summary_batch)
            try:
                rows = await self._db.claim_summaries(
                    self._cfg.worker_id, want, self._cfg.summary_lease
                )
            except DbLost:
                continue
            except psycopg.Error as exc:
                log.error("claim_summaries failed", extra={"fields": {"error": str(exc)[:300]}})
                rows = []
                await asyncio.sleep(1.0)
            for day in rows:
                task = asyncio.create_task(self._write(day))
                self._active.add(task)
                task.add_done_callback(self._done)
            if rows and len(rows) == want:
                continue
            await self._idle()

    async def _idle(self) -> None:
        """Until a NOTIFY, a wake-up or the poll interval."""
        deadline = time.monotonic() + self._cfg.poll_interval
        while not self._due and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._signal.clear()
            if self._due:
                return
            try:
                await asyncio.wait_for(self._signal.wait(), remaining)
            except TimeoutError:
                return

    def _done(self, task: asyncio.Task[None]) -> None:
        # no wake-up: a failed day is pending again at once, and re-claiming it immediately
        # would spend its attempts in a hot loop; the next NOTIFY or poll does
        self._active.discard(task)
        self._room.set()

    async def _write(self, day: SummaryDay) -> None:
        started = time.monotonic()
        budget = min(self._cfg.summary_timeout, max(1.0, self._cfg.summary_lease - 5.0))
        fields: dict[str, Any] = {
            "summary_id": day.id,
            "user_id": str(day.user_id),
            "date": day.date.isoformat(),
            "attempt": day.writer_attempts,
        }
        try:
            text, tone = writer_result(await asyncio.wait_for(self._writer(day), budget))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            await self._fail(day, f"writer timed out after {budget:g}s", fields)
            return
        except Exception as exc:
            await self._fail(day, f"{type(exc).__name__}: {exc}"[:2000], fields)
            return
        ok = await self._settle(self._db.complete_summary(day, text, tone))
        fields |= {
            "outcome": "written",
            "recorded": ok,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        log.info("summary", extra={"fields": fields})

    async def _fail(self, day: SummaryDay, error: str, fields: dict[str, Any]) -> None:
        state = await self._settle(self._db.fail_summary(day, error, True))
        fields |= {"outcome": "failed", "state": state, "error": error}
        log.warning("summary", extra={"fields": fields})

    async def _settle(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (DbLost, psycopg.Error) as exc:
            # the lease expires and the next claim hands the day out again
            log.warning(
                "could not record summary outcome", extra={"fields": {"error": str(exc)[:300]}}
            )
            return None

    async def drain(self) -> None:
        self._signal.set()
        self._room.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._active:
            _, pending = await asyncio.wait(self._active, timeout=self._cfg.shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning(
                    "shutdown: summary writing interrupted; leases expire and the days are "
                    "written again",
                    extra={"fields": {"interrupted": len(pending)}},
                )
