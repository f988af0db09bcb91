"""The event loop choice (nikita_shim.runtime, NIKITA_SHIM_EVENT_LOOP) and the Telegram
durability setting: defaults, validation with the setting named, the loop really used."""

from __future__ import annotations

import asyncio

import pytest

from nikita_shim import runtime
from nikita_shim.config import ConfigError, load_config

URL = {"DATABASE_URL": "postgresql://u@127.0.0.1/db"}


def test_defaults_are_auto_and_durable() -> None:
    cfg = load_config(URL)
    assert cfg.event_loop == "auto"
    assert cfg.telegram_durability == "durable"


@pytest.mark.parametrize("value", ["uvloop", "asyncio", "AUTO"])
def test_event_loop_values(value: str) -> None:
    assert load_config({**URL, "NIKITA_SHIM_EVENT_LOOP": value}).event_loop == value.lower()


def test_async_durability_is_accepted() -> None:
    cfg = load_config({**URL, "NIKITA_SHIM_TELEGRAM_DURABILITY": "async"})
    assert cfg.telegram_durability == "async"


def test_bad_values_are_named_with_the_choices() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            {
                **URL,
                "NIKITA_SHIM_EVENT_LOOP": "trio",
                "NIKITA_SHIM_TELEGRAM_DURABILITY": "fast",
            }
        )
    assert (
        "NIKITA_SHIM_EVENT_LOOP='trio' must be one of: auto, uvloop, asyncio" in err.value.problems
    )
    assert (
        "NIKITA_SHIM_TELEGRAM_DURABILITY='fast' must be one of: durable, async"
        in err.value.problems
    )


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_the_chosen_loop() -> None:
    assert runtime.run(_loop_module(), "asyncio").startswith("asyncio")
    assert runtime.run(_loop_module(), "uvloop").startswith("uvloop")
    assert runtime.run(_loop_module(), "auto").startswith("uvloop")  # installed: a dependency


def test_run_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIKITA_SHIM_EVENT_LOOP", "asyncio")
    assert runtime.run(_loop_module()).startswith("asyncio")
    monkeypatch.setenv("NIKITA_SHIM_EVENT_LOOP", "bogus")
    coro = _loop_module()
    with pytest.raises(ConfigError, match="NIKITA_SHIM_EVENT_LOOP='bogus' must be one of"):
        runtime.run(coro)
    assert coro.cr_frame is None  # closed, never left un-awaited


def test_uvloop_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails as if not installed
    assert runtime.resolve("auto") == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        runtime.resolve("uvloop")
