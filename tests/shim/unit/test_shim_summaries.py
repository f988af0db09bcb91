"""What a summary writer may return (summaries.writer_result) and the writer's configuration."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nikita_shim.config import ConfigError, load_config
from nikita_shim.summaries import WriterError, load_writer, writer_result


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("Hey you.", ("Hey you.", None)),
        (("Hey you.", "warm"), ("Hey you.", "warm")),
        ({"text": "Hey you.", "emotional_tone": "tense"}, ("Hey you.", "tense")),
        (SimpleNamespace(text="Hey you.", emotional_tone=None), ("Hey you.", None)),
    ],
)
def test_accepted_results(result: object, expected: tuple[str, str | None]) -> None:
    assert writer_result(result) == expected


@pytest.mark.parametrize(
    "result",
    [
        None,
        "",
        "\u200b \u00a0",  # blank by the project's rule
        "x" * 8001,
        {"summary": "wrong key"},
        ("text", " "),
        ("text", "t" * 201),
        ("text", 3),
    ],
)
def test_refused_results(result: object) -> None:
    with pytest.raises(ValueError):
        writer_result(result)


def test_loader_refuses_what_it_cannot_call() -> None:
    for spec in ("nocolon", "json:nothing_here", "json:dumps"):
        with pytest.raises(WriterError):
            load_writer(spec)


def test_timeout_must_fit_the_lease() -> None:
    env = {"DATABASE_URL": "postgresql://x@127.0.0.1/x", "NIKITA_SHIM_SUMMARY_TIMEOUT": "296"}
    with pytest.raises(ConfigError, match="SUMMARY_TIMEOUT"):
        load_config(env, need_delivery=False)
    cfg = load_config(env | {"NIKITA_SHIM_SUMMARY_TIMEOUT": "295"}, need_delivery=False)
    assert cfg.summary_timeout == 295
    assert cfg.summary_writer is None
