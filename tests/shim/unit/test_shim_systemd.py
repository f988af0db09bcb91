"""The systemd unit: verified by systemd-analyze (where available) and checked for the
settings the service relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "shim" / "systemd" / "nikita-shim.service"


def test_unit_has_notify_watchdog_restart_and_hardening():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "EnvironmentFile=",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestartPreventExitStatus=2",
    ):
        assert line in text, line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify(tmp_path):
    exe = Path(sys.executable).parent / "nikita-shim"
    unit = tmp_path / "nikita-shim.service"
    unit.write_text(UNIT.read_text().replace("/opt/nikita-shim/bin/nikita-shim", str(exe)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if "nikita-shim" in line and "EnvironmentFile" not in line
    ]
    assert out.returncode == 0, out.stdout + out.stderr
    assert not problems, problems
