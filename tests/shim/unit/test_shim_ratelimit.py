"""Rate limiter arithmetic, on a fake clock."""

from __future__ import annotations

from nikita_shim.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_per_chat_spacing():
    clock = Clock()
    rl = RateLimiter(global_rate=1000, per_key_rate=1, clock=clock)
    assert rl.reserve_key("a", 10) == 0
    assert rl.reserve_key("a", 10) == 1.0
    assert rl.reserve_key("a", 10) == 2.0
    assert rl.reserve_key("b", 10) == 0  # another chat is independent


def test_global_spacing():
    clock = Clock()
    rl = RateLimiter(global_rate=25, per_key_rate=1, clock=clock)
    waits = [rl.reserve_global() for _ in range(50)]
    assert waits[0] == 0
    assert abs(waits[-1] - 49 / 25) < 1e-9


def test_too_long_a_wait_is_refused_and_not_reserved():
    clock = Clock()
    rl = RateLimiter(global_rate=1000, per_key_rate=0.1, clock=clock)  # one per 10 s
    assert rl.reserve_key("a", 5) == 0
    assert rl.reserve_key("a", 5) is None
    clock.now += 10
    assert rl.reserve_key("a", 5) == 0


def test_penalty_after_retry_after():
    clock = Clock()
    rl = RateLimiter(global_rate=1000, per_key_rate=10, clock=clock)
    rl.penalize("a", 7)
    assert rl.reserve_key("a", 5) is None
    assert rl.reserve_key("a", 8) == 7


def test_memory_is_bounded():
    clock = Clock()
    rl = RateLimiter(global_rate=1000, per_key_rate=1, clock=clock, max_keys=100)
    for i in range(1000):
        rl.reserve_key(i, 10)
        clock.now += 2
    assert len(rl._key_next) <= 101
