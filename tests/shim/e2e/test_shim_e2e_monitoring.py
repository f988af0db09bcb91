"""The real `nikita-shim run` process under systemd-like conditions: syslog priority prefixes
on its log lines when stderr is the journal (JOURNAL_STREAM), none otherwise; and what its
/metrics endpoint serves (process metrics, version, platform disabled after a 401)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import httpx
from fakes.shim import ShimProcess, make_user, schedule, shim_env, wait_for

from nikita_shim import __version__

PREFIX = re.compile(r"^<[0-7]>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def journal_stream_of(path: Path) -> str:
    """JOURNAL_STREAM as systemd sets it: device:inode of the process's stderr."""
    path.touch()
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


async def _run_until_disabled(
    env, conn, tg, log: Path, port: int | None = None, ready: str = "msg=ready"
) -> str:
    """Start the shim, have Telegram answer 401 (an error line), return its log and /metrics."""
    user = await make_user(conn, telegram_id=4010)
    tg.script(4010, "401")
    p = ShimProcess(env, log).start()
    metrics = ""
    try:
        await p.wait_log(ready)
        await schedule(conn, user, "telegram", {"text": "hello"})
        await p.wait_log("platform disabled")
        if port is not None:

            async def scraped() -> bool:
                nonlocal metrics
                async with httpx.AsyncClient() as client:
                    metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                return 'nikita_shim_job_overdue{job_name="decay"}' in metrics

            await wait_for(scraped, what="the job gauges on /metrics")
        assert await p.stop() == 0
    finally:
        p.close()
    return metrics


def _lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line]


async def test_under_the_journal_every_line_has_its_priority(queue_db, conn, tg, tmp_path):
    log = tmp_path / "journal.log"
    port = free_port()
    env = shim_env(queue_db, tg, metrics_port=port) | {"JOURNAL_STREAM": journal_stream_of(log)}
    metrics = await _run_until_disabled(env, conn, tg, log, port)
    lines = _lines(log)
    assert lines and all(PREFIX.match(line) for line in lines), lines
    ready = [line for line in lines if " msg=ready" in line]
    disabled = [line for line in lines if "platform disabled" in line]
    assert ready and ready[0].startswith("<6>ts="), ready
    assert disabled and disabled[0].startswith("<3>ts=") and "level=error" in disabled[0]

    # the same run's /metrics
    assert 'nikita_shim_platform_disabled{platform="telegram"} 1.0' in metrics
    assert f'nikita_shim_build_info{{version="{__version__}"}} 1.0' in metrics
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert f"\n{name}" in metrics, name
    assert 'nikita_shim_queue_oldest_due_lag_seconds{platform="voice"}' in metrics


async def test_elsewhere_lines_are_plain(queue_db, conn, tg, tmp_path):
    log = tmp_path / "plain.log"
    # inherited from a parent whose stderr was the journal, but this stderr is a file
    env = shim_env(queue_db, tg) | {"JOURNAL_STREAM": journal_stream_of(tmp_path / "other")}
    await _run_until_disabled(env, conn, tg, log)
    lines = _lines(log)
    assert lines and not any(PREFIX.match(line) for line in lines), lines
    assert any(line.startswith("ts=") and "platform disabled" in line for line in lines)


async def test_prefix_forced_on_json_lines(queue_db, conn, tg, tmp_path):
    log = tmp_path / "json.log"
    env = shim_env(queue_db, tg, log_format="json", log_priority_prefix="yes")
    await _run_until_disabled(env, conn, tg, log, ready='"msg": "ready"')
    lines = _lines(log)
    assert lines and all(re.match(r'^<[0-7]>\{"ts": ', line) for line in lines), lines
    assert any(line.startswith("<3>{") and "platform disabled" in line for line in lines)
