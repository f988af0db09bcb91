"""How the shim's coroutines are run: uvloop when chosen (the default when it is installed),
else asyncio's own loop. `nikita-shim run` and the benchmarks (bench/peers/nikita_bench.py)
both call `run()`, so a benchmark runs the loop production runs.

NIKITA_SHIM_EVENT_LOOP = auto (uvloop if importable, else asyncio) | uvloop | asyncio.
Measured in docs/shim.md "Performance".
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from .config import EVENT_LOOPS, ConfigError

T = TypeVar("T")


def event_loop_setting(env: Mapping[str, str] | None = None) -> str:
    """NIKITA_SHIM_EVENT_LOOP, validated (ConfigError naming the value otherwise)."""
    env = os.environ if env is None else env
    value = (env.get("NIKITA_SHIM_EVENT_LOOP") or "").strip().lower() or "auto"
    if value not in EVENT_LOOPS:
        raise ConfigError(
            [f"NIKITA_SHIM_EVENT_LOOP={value!r} must be one of: {', '.join(EVENT_LOOPS)}"]
        )
    return value


def resolve(event_loop: str) -> str:
    """The loop that `run()` uses for a setting: 'uvloop' or 'asyncio'. 'uvloop' when it is
    not installed is a ConfigError; 'auto' falls back to asyncio quietly."""
    if event_loop == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if event_loop == "uvloop":
            raise ConfigError(
                ["NIKITA_SHIM_EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop)"]
            ) from None
        return "asyncio"
    return "uvloop"


def run(coro: Coroutine[Any, Any, T], event_loop: str | None = None) -> T:
    """Run `coro` to completion in a new event loop, like asyncio.run(). `event_loop`: a
    NIKITA_SHIM_EVENT_LOOP value (None: read it from the environment)."""
    try:
        chosen = resolve(event_loop_setting() if event_loop is None else event_loop)
    except BaseException:
        coro.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    if chosen == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)
