"""The claimed event and the outcome of delivering it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(slots=True)
class ClaimedEvent:
    """A row returned by nikita.claim_events()."""

    id: UUID
    lock_token: UUID
    user_id: UUID
    platform: str
    event_type: str
    content: dict[str, Any]
    scheduled_at: datetime
    attempts: int
    claimed_at: float = 0.0  # time.time() when the claim returned


class Kind(enum.Enum):
    DELIVERED = "delivered"  # complete_event(provider_ref)
    RETRY = "retry"  # fail_event(retryable=true): backoff, or failed when attempts are exhausted
    PERMANENT = "failed"  # fail_event(retryable=false)
    UNKNOWN = "unknown"  # fail_event(retryable=false) 'outcome unknown: ...' (a call may exist)
    DEFER = "deferred"  # defer_event(now + delay): no attempt consumed (rate limit)
    RELEASE = "released"  # defer_event(now): shutting down before the transport was called
    DISABLED = "disabled"  # platform misconfigured (e.g. 401): defer, stop using the platform


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    provider_ref: str | None = None
    error: str | None = None
    delay: float = 0.0

    @staticmethod
    def delivered(provider_ref: str | None) -> Outcome:
        return Outcome(Kind.DELIVERED, provider_ref=provider_ref)

    @staticmethod
    def retry(error: str) -> Outcome:
        return Outcome(Kind.RETRY, error=error)

    @staticmethod
    def permanent(error: str) -> Outcome:
        return Outcome(Kind.PERMANENT, error=error)

    @staticmethod
    def unknown(error: str) -> Outcome:
        return Outcome(Kind.UNKNOWN, error=f"outcome unknown: {error}")

    @staticmethod
    def defer(delay: float, reason: str) -> Outcome:
        return Outcome(Kind.DEFER, error=reason, delay=max(0.0, delay))

    @staticmethod
    def release(reason: str = "released at shutdown") -> Outcome:
        return Outcome(Kind.RELEASE, error=reason)

    @staticmethod
    def disabled(error: str) -> Outcome:
        return Outcome(Kind.DISABLED, error=error)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Remove secrets (bot token, API key) from an error text before it is logged or stored."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text[:2000]
