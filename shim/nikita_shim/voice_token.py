"""The signed token the game's voice-agent tools present back to the game (made at call time).

The game (yangsi7/nikita) authenticates every mid-call server-tool webhook with the dynamic
variable `secret__signed_token` that the call was started with
(`nikita/api/utils/webhook_auth.py: validate_signed_token`; made by
`VoiceService._generate_signed_token`, used by `scheduling_overrides.py` for scheduled calls):

    token     = "{user_id}:{session_id}:{issued_at}:{signature}"
    signature = hex(HMAC-SHA256(key = ELEVENLABS_WEBHOOK_SECRET (UTF-8),
                                msg = "{user_id}:{session_id}:{issued_at}" (UTF-8)))
    issued_at = integer Unix seconds; valid while now - issued_at <= 1800 (30 minutes)

session_id is `voice_{16 hex}_{issued_at}` as the game makes it, so two calls never share a
token. The token is made when the call is placed, never stored; the secret stays in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

SECRET_ENV = "ELEVENLABS_WEBHOOK_SECRET"
USER_ID_VARIABLE = "secret__user_id"
TOKEN_VARIABLE = "secret__signed_token"
TOKEN_LIFETIME_SECONDS = 1800  # the game's TOKEN_VALIDITY_SECONDS (checked by the game)


def session_id(now: int) -> str:
    """A fresh voice session id in the game's format."""
    return f"voice_{secrets.token_hex(8)}_{now}"


def make_token(
    secret: str,
    user_id: str,
    *,
    clock: Callable[[], float] = time.time,
) -> str:
    """A token the game's validate_signed_token accepts for TOKEN_LIFETIME_SECONDS."""
    if not secret:
        raise ValueError("no webhook secret")
    if ":" in user_id:  # the game splits on ':' into exactly four parts
        raise ValueError("user id must not contain ':'")
    now = int(clock())
    payload = f"{user_id}:{session_id(now)}:{now}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}:{signature}"
