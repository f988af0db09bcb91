"""deploy/prometheus/nikita-alerts.yml: valid for Prometheus (`promtool check rules`) and
behaving as its cases say (`promtool test rules`); a rule that sums the replicas' gauges
instead of taking their max fails the cases."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "nikita-alerts.yml"
CASES = ROOT / "deploy" / "prometheus" / "nikita-alerts.test.yml"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install the Debian package `prometheus` "
    "(make test as root does: scripts/db.sh packages)",
)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid():
    out = promtool("check", "rules", str(RULES), cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 9 rules found" in out.stdout + out.stderr


def test_rule_cases_pass():
    out = promtool("test", "rules", CASES.name, cwd=CASES.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_names_the_rules_use_are_exported():
    """Every nikita_shim_* name in the rules is one the shim registers."""
    from nikita_shim.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    used = set(re.findall(r"\b(nikita_shim_[a-z_]+?)(?:_total)?\b", RULES.read_text()))
    assert used, "no metric names found in the rules"
    assert used <= exported, used - exported


@pytest.mark.parametrize(
    ("original", "mutant"),
    [
        ("max by (platform) (nikita_shim_queue_oldest_due_lag_seconds) > 300",
         "sum by (platform) (nikita_shim_queue_oldest_due_lag_seconds) > 300"),
        ("== 0\n        for: 2m", "== 0\n        for: 0m"),
        ("max by (platform) (nikita_shim_platform_disabled) == 1",
         "min by (platform) (nikita_shim_platform_disabled) == 1"),
        (") >= 5\n", ") >= 50\n"),
    ],
)  # fmt: skip
def test_the_cases_catch_a_wrong_rule(tmp_path, original, mutant):
    text = RULES.read_text()
    assert original in text, "the rules changed: update this mutation"
    (tmp_path / RULES.name).write_text(text.replace(original, mutant))
    shutil.copy(CASES, tmp_path / CASES.name)
    out = promtool("test", "rules", CASES.name, cwd=tmp_path)
    assert out.returncode != 0, "the cases did not notice the mutated rule"
