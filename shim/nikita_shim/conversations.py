"""Optional host for the game app's conversation post-processing.

`--conversation-processor module:function` names an async callable. It is given a
`Conversation` (id, user_id, platform, started_at, ended_at, processing_attempts) and returns
the summary and emotional tone: a mapping with keys "summary" and "emotional_tone", an object
with those attributes, or a (summary, emotional_tone) tuple. Raising fails the attempt
(`fail_conversation`; the database retries up to 3 attempts).
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

from .config import Config
from .connector import DbLost
from .conversation_store import Conversation, ConversationStore
from .metrics import Metrics

log = logging.getLogger("nikita_shim.conversations")

Processor = Callable[[Conversation], Awaitable[Any]]


class ProcessorError(Exception):
    pass


def load_processor(spec: str) -> Processor:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ProcessorError(f"--conversation-processor {spec!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ProcessorError(
            f"--conversation-processor {spec!r}: cannot import {module_name} ({exc})"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ProcessorError(f"--conversation-processor {spec!r}: {module_name} has no {attr}")
    if not callable(target):
        raise ProcessorError(f"--conversation-processor {spec!r}: {attr} is not callable")
    if not (
        inspect.iscoroutinefunction(target)
        or inspect.iscoroutinefunction(
            getattr(target, "__call__", None)  # noqa: B004 (async callable objects)
        )
    ):
        raise ProcessorError(f"--conversation-processor {spec!r}: {attr} must be async")
    return target


def _result_fields(result: Any) -> tuple[str | None, str | None]:
    if result is None:
        return None, None
    if isinstance(result, tuple) and len(result) == 2:
        return result[0], result[1]
    if isinstance(result, dict):
        return result.get("summary"), result.get("emotional_tone")
    return getattr(result, "summary", None), getattr(result, "emotional_tone", None)


class ConversationLoop:
    def __init__(
        self,
        cfg: Config,
        store: ConversationStore,
        processor: Processor,
        metrics: Metrics,
        stopping: asyncio.Event,
    ) -> None:
        self._cfg = cfg
        self._db = store
        self._processor = processor
        self._metrics = metrics
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
        self._task = asyncio.create_task(self._run(), name="conversations")

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The long-lived task (the claimer); processing tasks are per conversation."""
        return [self._task] if self._task is not None else []

    async def _run(self) -> None:
        limit = self._cfg.conversation_concurrency
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
            try:
                rows = await self._db.claim_conversations(
                    self._cfg.worker_id,
                    min(room, self._cfg.conversation_batch),
                    self._cfg.conversation_lease,
                )
            except DbLost:
                continue
            except psycopg.Error as exc:
                log.error("claim_conversations failed", extra={"fields": {"error": str(exc)[:300]}})
                rows = []
                await asyncio.sleep(1.0)
            for conv in rows:
                task = asyncio.create_task(self._process(conv))
                self._active.add(task)
                task.add_done_callback(self._done)
            if rows and len(rows) == min(room, self._cfg.conversation_batch):
                continue
            deadline = time.monotonic() + self._cfg.poll_interval
            while not self._due and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._signal.clear()
                if self._due:
                    break
                try:
                    await asyncio.wait_for(self._signal.wait(), remaining)
                except TimeoutError:
                    break

    def _done(self, task: asyncio.Task[None]) -> None:
        # no wake-up here: a failed conversation is back to 'ended' at once, and re-claiming
        # it immediately would burn its attempts in a hot loop; the next NOTIFY or poll does
        self._active.discard(task)
        self._room.set()

    async def _process(self, conv: Conversation) -> None:
        started = time.monotonic()
        budget = max(1.0, self._cfg.conversation_lease - 5.0)
        try:
            result = await asyncio.wait_for(self._processor(conv), budget)
            summary, tone = _result_fields(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            status = await self._settle(self._db.fail_conversation(conv, error))
            self._metrics.conversations.labels("failed").inc()
            log.warning(
                "conversation",
                extra={
                    "fields": {
                        "conversation_id": str(conv.id),
                        "outcome": "failed",
                        "status": status,
                        "attempt": conv.processing_attempts,
                        "error": error,
                    }
                },
            )
            return
        ok = await self._settle(self._db.complete_conversation(conv, summary, tone))
        self._metrics.conversations.labels("processed").inc()
        log.info(
            "conversation",
            extra={
                "fields": {
                    "conversation_id": str(conv.id),
                    "outcome": "processed",
                    "recorded": ok,
                    "attempt": conv.processing_attempts,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )

    async def _settle(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (DbLost, psycopg.Error) as exc:
            # the lease expires and the database hands the conversation out again
            log.warning(
                "could not record conversation outcome", extra={"fields": {"error": str(exc)[:300]}}
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
                    "shutdown: conversation processing interrupted; leases expire and the "
                    "conversations are processed again",
                    extra={"fields": {"interrupted": len(pending)}},
                )
