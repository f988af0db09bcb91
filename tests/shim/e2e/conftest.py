"""Fixtures of the shim's end-to-end tests: fake providers and a connection to db_url."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fakes import elevenlabs, shim, telegram

os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture
def tg() -> Iterator[telegram.FakeTelegram]:
    with telegram.FakeTelegram() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def el() -> Iterator[elevenlabs.FakeElevenLabs]:
    with elevenlabs.FakeElevenLabs() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., shim.ShimProcess]]:
    """Start `nikita-shim run` subprocesses (log files in tmp_path); all killed afterwards."""
    started: list[shim.ShimProcess] = []

    def make(
        env: dict[str, str], name: str = "shim", args: tuple[str, ...] = ()
    ) -> shim.ShimProcess:
        p = shim.ShimProcess(env, tmp_path / f"{name}-{len(started)}.log", args).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.close()


@pytest.fixture
def queue_db(db_url: str) -> str:
    """The test's own migrated database (the lead's db_url fixture)."""
    return db_url


@pytest.fixture
async def conn(queue_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    c = await shim.connect(queue_db)
    try:
        yield c
    finally:
        await c.close()
