"""Telegram rate limits: a global messages-per-second spacing and a per-chat spacing.

Reservations are made up front, so concurrent senders queue in order without busy waiting.
A sender whose wait would exceed the caller's maximum gets None and defers the event instead
(no attempt consumed) rather than holding its lease while it sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        global_rate: float,
        per_key_rate: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self._global_interval = 1.0 / global_rate
        self._key_interval = 1.0 / per_key_rate
        self._clock = clock
        self._global_next = 0.0
        self._key_next: dict[object, float] = {}
        self._max_keys = max_keys

    def reserve_key(self, key: object, max_wait: float) -> float | None:
        """Reserve the next per-key slot; return the wait in seconds, or None if too far."""
        now = self._clock()
        slot = max(now, self._key_next.get(key, 0.0))
        wait = slot - now
        # the global limiter will add its own backlog on top
        backlog = max(0.0, self._global_next - max(now, slot))
        if wait + backlog > max_wait:
            return None
        self._key_next[key] = slot + self._key_interval
        if len(self._key_next) > self._max_keys:
            self._prune(now)
        return wait

    def reserve_global(self) -> float:
        """Reserve the next global slot from now on; return the wait in seconds."""
        now = self._clock()
        slot = max(now, self._global_next)
        self._global_next = slot + self._global_interval
        return slot - now

    def penalize(self, key: object, seconds: float) -> None:
        """Telegram said 'retry after': nothing for this chat before then."""
        until = self._clock() + seconds
        if self._key_next.get(key, 0.0) < until:
            self._key_next[key] = until

    def _prune(self, now: float) -> None:
        for k in [k for k, t in self._key_next.items() if t <= now]:
            del self._key_next[k]
