"""The claimed event and the outcome of delivering it."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
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
    bad: str | None = None  # why the row could not be decoded: failed without delivery


def decode_row(row: Sequence[Any], claimed_at: float) -> ClaimedEvent:
    """A claim_events row (content as JSON text) as a ClaimedEvent. Never raises for a bad
    content: any error (RecursionError on deep nesting, a non-object, ...) is kept in `bad`
    so that this one event is failed with its reason and the others go on."""
    event_id, lock_token, user_id, platform, event_type, text, scheduled_at, attempts = row
    content: dict[str, Any] = {}
    bad: str | None = None
    try:
        decoded = json.loads(text) if text is not None else None
        if isinstance(decoded, dict):
            content = decoded
        else:
            bad = f"content is not a JSON object but {type(decoded).__name__}"
    except RecursionError:
        bad = "content nests too deeply to decode"
    except Exception as exc:  # ValueError, MemoryError-free surprises: fail this event only
        bad = f"{type(exc).__name__}: {exc}"[:300]
    return ClaimedEvent(
        event_id,
        lock_token,
        user_id,
        platform,
        event_type,
        content,
        scheduled_at,
        attempts,
        claimed_at=claimed_at,
        bad=bad,
    )


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
