"""Console transport: one line per delivery on stdout (offline development, `make run`)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..events import ClaimedEvent, Outcome
from . import DeliveryContext


class ConsoleTransport:
    name = "console"

    def __init__(self, platform: str, stream: TextIO | None = None) -> None:
        self.platform = platform
        self._stream = stream

    async def start(self) -> None:
        return None

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        ctx.calling()
        content = event.content
        if self.platform == "telegram":
            what = f"chat {content.get('chat_id')}: {content.get('text', '')}"
        else:
            extra = {k: v for k, v in content.items() if k != "to_number"}
            what = f"call {content.get('to_number')} {json.dumps(extra, ensure_ascii=False)}"
        stream = self._stream or sys.stdout
        print(f"[{self.platform} {event.event_type} {event.id}] {what}", file=stream, flush=True)
        return Outcome.delivered(f"console:{event.id}")

    async def close(self) -> None:
        return None
