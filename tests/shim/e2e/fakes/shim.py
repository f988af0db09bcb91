"""Helpers to run the shim under test (in process or as a real subprocess) and to drive the
database the way the game app does (schedule_event)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nikita_shim.config import load_config
from nikita_shim.service import Shim

from . import elevenlabs, telegram

ROOT = Path(__file__).resolve().parents[4]
SHIM_BIN = Path(sys.executable).parent / "nikita-shim"


def shim_env(
    db_url: str,
    tg: telegram.FakeTelegram | None = None,
    el: elevenlabs.FakeElevenLabs | None = None,
    **knobs: Any,
) -> dict[str, str]:
    """Environment for a shim talking to the fakes. Knobs: NIKITA_SHIM_<NAME> values."""
    env = {"DATABASE_URL": db_url, "NIKITA_SHIM_LOG_LEVEL": "info"}
    if tg is not None:
        env |= {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url}
    if el is not None:
        env |= {
            "ELEVENLABS_API_KEY": el.api_key,
            "ELEVENLABS_AGENT_ID": el.agent_id,
            "ELEVENLABS_PHONE_NUMBER_ID": el.phone_id,
            "ELEVENLABS_API_BASE": el.url,
        }
    # fast tests: short fallback poll and sweep; generous lease
    env |= {"NIKITA_SHIM_POLL_INTERVAL": "2", "NIKITA_SHIM_SWEEP_INTERVAL": "1"}
    for key, value in knobs.items():
        env[f"NIKITA_SHIM_{key.upper()}"] = str(value)
    return env


@contextlib.asynccontextmanager
async def running_shim(env: dict[str, str], **kwargs: Any) -> AsyncIterator[Shim]:
    """A shim running in this event loop; stopped (drained) on exit."""
    cfg = load_config(env)
    shim = Shim(cfg, **kwargs)
    task = asyncio.create_task(shim.run())
    ready = asyncio.create_task(shim.ready.wait())
    await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if not shim.ready.is_set():
        ready.cancel()
        shim.stop()
        code = await asyncio.wait_for(task, 10)
        raise RuntimeError(f"shim did not become ready (exit {code})")
    try:
        yield shim
    finally:
        shim.stop()
        await asyncio.wait_for(task, 60)


class ShimProcess:
    """`nikita-shim run` as a real subprocess; its log goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    def start(self) -> ShimProcess:
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("NIKITA_", "TELEGRAM_"))
        }
        full_env.update(self.env)
        full_env.pop("NOTIFY_SOCKET", None) if "NOTIFY_SOCKET" not in self.env else None
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(SHIM_BIN), "run", *self.args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, needle: str, within: float = 20.0, count: int = 1) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.log().count(needle) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"shim exited ({self.proc.returncode}):\n{self.log()}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the shim log after {within}s:\n{self.log()}")

    async def wait_ready(self, within: float = 20.0) -> None:
        await self.wait_log("msg=ready", within)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float = 30.0) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + within
        while self.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            raise AssertionError(f"shim did not exit within {within}s:\n{self.log()}")
        return self.proc.returncode

    async def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        return await self.wait_exit()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        if self._log is not None:
            self._log.close()


# ---- database side (what the game app does) -------------------------------------------------


async def connect(url: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


async def make_user(
    conn: psycopg.AsyncConnection[Any], telegram_id: int | None = None, phone: str | None = None
) -> UUID:
    cur = await conn.execute(
        "INSERT INTO nikita.users (telegram_id, phone, onboarding_status)"
        " VALUES (%s, %s, 'completed') RETURNING id",
        (telegram_id, phone),
    )
    row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def schedule(
    conn: psycopg.AsyncConnection[Any],
    user_id: UUID,
    platform: str,
    content: dict[str, Any],
    at: datetime | None = None,
    event_type: str = "message_delivery",
) -> UUID:
    if at is None:
        cur = await conn.execute(
            "SELECT nikita.schedule_event(%s, %s, %s, %s::jsonb) AS id",
            (user_id, platform, event_type, json.dumps(content)),
        )
    else:
        cur = await conn.execute(
            "SELECT nikita.schedule_event(%s, %s, %s, %s::jsonb, %s) AS id",
            (user_id, platform, event_type, json.dumps(content), at),
        )
    row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def events(conn: psycopg.AsyncConnection[Any], ids: list[UUID] | None = None) -> list[dict]:
    if ids is None:
        cur = await conn.execute("SELECT * FROM nikita.scheduled_events ORDER BY created_at")
    else:
        cur = await conn.execute("SELECT * FROM nikita.scheduled_events WHERE id = ANY(%s)", (ids,))
    return await cur.fetchall()


async def event(conn: psycopg.AsyncConnection[Any], event_id: UUID) -> dict[str, Any]:
    rows = await events(conn, [event_id])
    assert rows, f"no event {event_id}"
    return rows[0]


async def status_counts(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT status, count(*)::int AS n FROM nikita.scheduled_events GROUP BY status"
    )
    return {r["status"]: r["n"] for r in await cur.fetchall()}


async def wait_for(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    within: float = 15.0,
    step: float = 0.05,
    what: str = "condition",
) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(step)


async def wait_status(
    conn: psycopg.AsyncConnection[Any],
    event_id: UUID,
    status: str | tuple[str, ...],
    within: float = 15.0,
) -> dict[str, Any]:
    wanted = (status,) if isinstance(status, str) else status
    row: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal row
        row = await event(conn, event_id)
        return row["status"] in wanted

    try:
        await wait_for(check, within, what=f"event {event_id} to be {wanted}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last row: {row}") from None
    return row
