"""The voice token's format and the request body built at call time (no network)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from nikita_shim.config import load_config
from nikita_shim.transports.voice import build_body
from nikita_shim.voice_token import make_token

SECRET = "wsec_unit_0123456789abcdef"
USER = "3f1c2a9e-0000-4000-8000-000000000001"


def test_token_is_the_games_format() -> None:
    token = make_token(SECRET, USER, clock=lambda: 1_700_000_000.9)
    user_id, session_id, ts, signature = token.split(":")
    assert (user_id, ts) == (USER, "1700000000")
    assert session_id.startswith("voice_") and session_id.endswith("_1700000000")
    assert len(session_id) == len("voice_") + 16 + len("_1700000000")
    payload = f"{user_id}:{session_id}:{ts}".encode()
    assert signature == hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()


def test_tokens_differ_within_one_second() -> None:
    tokens = {make_token(SECRET, USER, clock=lambda: 5.0) for _ in range(50)}
    assert len(tokens) == 50


def test_no_secret_or_a_colon_is_refused() -> None:
    with pytest.raises(ValueError):
        make_token("", USER)
    with pytest.raises(ValueError):
        make_token(SECRET, "a:b")


def test_call_variables_win_and_a_stored_token_is_dropped() -> None:
    content = {
        "to_number": "+15550000001",
        "dynamic_variables": {"secret__signed_token": "stale", "secret__user_id": "x", "n": 1},
    }
    body = build_body(content, "agent", "phone", {"secret__user_id": USER})
    client = body["conversation_initiation_client_data"]
    assert client["dynamic_variables"] == {"secret__user_id": USER, "n": 1}
    assert client["user_id"] == USER
    assert content["dynamic_variables"]["secret__signed_token"] == "stale"  # not mutated


def test_secret_config() -> None:
    base = {"DATABASE_URL": "postgresql://u:pw@h/db", "NIKITA_SHIM_TELEGRAM_TRANSPORT": "noop"}
    cfg = load_config(base | {"ELEVENLABS_WEBHOOK_SECRET": SECRET})
    assert cfg.elevenlabs_webhook_secret == SECRET
    assert SECRET in cfg.secrets and SECRET not in repr(cfg)
    assert load_config(base).elevenlabs_webhook_secret is None
    with pytest.raises(Exception, match="ELEVENLABS_WEBHOOK_SECRET is shorter"):
        load_config(base | {"ELEVENLABS_WEBHOOK_SECRET": "short"})
