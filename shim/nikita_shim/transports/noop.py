"""No-op transport: accepts every event at once (benchmarks, load tests)."""

from __future__ import annotations

from ..events import ClaimedEvent, Outcome
from . import DeliveryContext


class NoopTransport:
    name = "noop"

    def __init__(self, platform: str) -> None:
        self.platform = platform

    async def start(self) -> None:
        return None

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        ctx.calling()
        return Outcome.delivered(None)

    async def close(self) -> None:
        return None
