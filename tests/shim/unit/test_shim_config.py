"""Configuration: every missing or invalid setting is named, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nikita_shim.config import ConfigError, load_config

SHIM = Path(sys.executable).parent / "nikita-shim"
TOKEN = "123456789:AAF-fake-token-for-tests-0123456789ab"


def test_defaults_offline_are_console():
    cfg = load_config({"DATABASE_URL": "postgresql://u@127.0.0.1/db"})
    assert cfg.telegram_transport == "console"
    assert cfg.voice_transport == "console"
    assert cfg.telegram_rate == 25 and cfg.telegram_chat_rate == 1
    assert cfg.poll_interval == 30 and cfg.lease_seconds == 120


def test_token_selects_telegram_and_voice_stays_off_without_elevenlabs():
    cfg = load_config({"DATABASE_URL": "postgresql:///db", "TELEGRAM_BOT_TOKEN": TOKEN})
    assert cfg.telegram_transport == "telegram"
    assert cfg.voice_transport == "disabled"  # never "deliver" calls to a console in production
    assert cfg.telegram_api_base == "https://api.telegram.org/bot"
    assert TOKEN not in repr(cfg)


def test_api_base_gets_bot_suffix():
    cfg = load_config(
        {"DATABASE_URL": "postgresql:///db", "TELEGRAM_API_BASE": "http://127.0.0.1:8081/"}
    )
    assert cfg.telegram_api_base == "http://127.0.0.1:8081/bot"


def test_every_problem_is_named_at_once():
    env = {
        "TELEGRAM_BOT_TOKEN": "nonsense",
        "ELEVENLABS_API_KEY": "sk_x",
        "NIKITA_SHIM_BATCH_SIZE": "lots",
        "NIKITA_SHIM_TELEGRAM_RATE": "0",
        "NIKITA_SHIM_VOICE_TRANSPORT": "carrier-pigeon",
        "NIKITA_SHIM_METRICS_PORT": "99999",
        "ELEVENLABS_API_BASE": "ftp://x",
    }
    with pytest.raises(ConfigError) as info:
        load_config(env)
    text = "\n".join(info.value.problems)
    for name in (
        "DATABASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "NIKITA_SHIM_BATCH_SIZE",
        "NIKITA_SHIM_TELEGRAM_RATE",
        "NIKITA_SHIM_VOICE_TRANSPORT",
        "NIKITA_SHIM_METRICS_PORT",
        "ELEVENLABS_API_BASE",
    ):
        assert name in text, name
    assert "nonsense" not in text  # a bad secret is not echoed


def test_elevenlabs_key_needs_agent_and_number():
    with pytest.raises(ConfigError) as info:
        load_config({"DATABASE_URL": "postgresql:///db", "ELEVENLABS_API_KEY": "sk_x"})
    text = " ".join(info.value.problems)
    assert "ELEVENLABS_AGENT_ID" in text and "ELEVENLABS_PHONE_NUMBER_ID" in text


def test_lease_must_outlast_timeouts():
    with pytest.raises(ConfigError, match="LEASE"):
        load_config(
            {
                "DATABASE_URL": "postgresql:///db",
                "NIKITA_SHIM_LEASE_SECONDS": "5",
                "NIKITA_SHIM_VOICE_TIMEOUT": "10",
            }
        )


def test_status_needs_only_the_database():
    cfg = load_config(
        {"DATABASE_URL": "postgresql:///db", "NIKITA_SHIM_TELEGRAM_TRANSPORT": "telegram"},
        need_delivery=False,
    )
    assert cfg.database_url


@pytest.mark.parametrize("command", ["run", "check", "status"])
def test_cli_bad_configuration_exits_with_a_clear_message(command):
    env = {"PATH": "/usr/bin:/bin", "NIKITA_SHIM_CONCURRENCY": "-3"}
    out = subprocess.run(
        [str(SHIM), command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # check is a monitoring plugin: a bad configuration is UNKNOWN (3), not CRITICAL (2)
    assert out.returncode == (3 if command == "check" else 2), out
    assert "DATABASE_URL is missing" in out.stderr
    if command == "run":
        assert "NIKITA_SHIM_CONCURRENCY" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bad_conversation_processor_exits_2():
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}
    out = subprocess.run(
        [str(SHIM), "run", "--conversation-processor", "no_such_module_xyz:process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "no_such_module_xyz" in out.stderr


def test_voice_concurrency_and_test_fault_are_validated():
    cfg = load_config({"DATABASE_URL": "postgresql:///db"}, need_delivery=False)
    assert cfg.voice_concurrency == 4 and cfg.test_fault is None
    cfg = load_config(
        {
            "DATABASE_URL": "postgresql:///db",
            "NIKITA_SHIM_VOICE_CONCURRENCY": "1",
            "NIKITA_SHIM_TEST_FAULT": "Pump",
        },
        need_delivery=False,
    )
    assert cfg.voice_concurrency == 1 and cfg.test_fault == "pump"
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                "DATABASE_URL": "postgresql:///db",
                "NIKITA_SHIM_VOICE_CONCURRENCY": "0",
                "NIKITA_SHIM_TEST_FAULT": "everything",
            }
        )
    text = " ".join(info.value.problems)
    assert "NIKITA_SHIM_VOICE_CONCURRENCY" in text and "NIKITA_SHIM_TEST_FAULT" in text
