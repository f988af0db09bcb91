"""The claimed event and the outcome of delivering it."""

from __future__ import annotations

import enum
import json
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


def decode_event(
    *,
    id: UUID,  # the column's name, shadowing the builtin here only
    lock_token: UUID,
    user_id: UUID,
    platform: str,
    event_type: str,
    content: str | None,
    scheduled_at: datetime,
    attempts: int,
    claimed_at: float,
) -> ClaimedEvent:
    """A claim_events row, by column name (content as JSON text), as a ClaimedEvent. Never
    raises for a bad content: any error (RecursionError on deep nesting, a non-object, ...) is
    kept in `bad` so that this one event is failed with its reason and the others go on."""
    decoded_content: dict[str, Any] = {}
    bad: str | None = None
    try:
        decoded = json.loads(content) if content is not None else None
        if isinstance(decoded, dict):
            decoded_content = decoded
        else:
            bad = f"content is not a JSON object but {type(decoded).__name__}"
    except RecursionError:
        bad = "content nests too deeply to decode"
    except Exception as exc:  # ValueError, MemoryError-free surprises: fail this event only
        bad = f"{type(exc).__name__}: {exc}"[:300]
    return ClaimedEvent(
        id=id,
        lock_token=lock_token,
        user_id=user_id,
        platform=platform,
        event_type=event_type,
        content=decoded_content,
        scheduled_at=scheduled_at,
        attempts=attempts,
        claimed_at=claimed_at,
        bad=bad,
    )


class Kind(enum.Enum):
    """What happened to one event. The value is the `outcome` of the delivery log line and of
    the nikita_shim_deliveries_total metric; the comment says how the loop records it."""

    DELIVERED = "delivered"  # complete_event(provider_ref)
    RETRY = "retry"  # fail_event(retryable=true): backoff, or failed when attempts are exhausted
    FAILED = "failed"  # fail_event(retryable=false): failed for good
    UNKNOWN = "unknown"  # fail_event(retryable=false) 'outcome unknown: ...' (a call may exist)
    DEFERRED = "deferred"  # defer_event(now + delay): no attempt consumed (rate limit)
    RELEASED = "released"  # defer_event(now): shutting down before the transport was called
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
        return Outcome(Kind.FAILED, error=error)

    @staticmethod
    def unknown(error: str) -> Outcome:
        return Outcome(Kind.UNKNOWN, error=f"outcome unknown: {error}")

    @staticmethod
    def defer(delay: float, reason: str) -> Outcome:
        return Outcome(Kind.DEFERRED, error=reason, delay=max(0.0, delay))

    @staticmethod
    def release(reason: str = "released at shutdown") -> Outcome:
        return Outcome(Kind.RELEASED, error=reason)

    @staticmethod
    def disabled(error: str) -> Outcome:
        return Outcome(Kind.DISABLED, error=error)
