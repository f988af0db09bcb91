"""Transports deliver one claimed event and say what happened, as an Outcome.

A transport never touches the database: the delivery loop turns the Outcome into
complete_event / fail_event / defer_event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ..events import ClaimedEvent, Outcome


class Transport(Protocol):
    platform: str
    name: str

    async def start(self) -> None:
        """Open clients; may verify credentials (a fault is reported per event later)."""

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        """Deliver one event. Must not raise for delivery failures: return an Outcome."""
        ...

    async def close(self) -> None:
        """Release clients."""


class DeliveryContext:
    """What a transport may need from the loop while delivering one event."""

    __slots__ = ("_on_call", "stopping")

    def __init__(self, stopping: asyncio.Event, on_call: Callable[[], None]) -> None:
        self.stopping = stopping
        self._on_call = on_call

    def calling(self) -> None:
        """Call right before the provider request goes out (lateness is measured here, and a
        shutdown after this point finishes the delivery instead of releasing the event)."""
        self._on_call()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless shutdown begins; True when the full time elapsed."""
        if seconds <= 0:
            return not self.stopping.is_set()
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False
