"""The daily-summary writer operations (claim, complete, fail), over the connector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from psycopg.rows import class_row

from . import queries
from .connector import Connector, scalar


@dataclass(slots=True)
class SummaryDay:
    """A row returned by nikita.claim_summaries(): one player's local day, given to the writer.

    `summary_text` is the summary job's factual text (kept whatever the writer does); `chapter`
    and `game_status` are the player's current ones; `date` is the player's local date and
    `day_start`/`day_end` its bounds.
    """

    id: int
    lock_token: UUID
    user_id: UUID
    date: date
    timezone: str
    day_start: datetime
    day_end: datetime
    score_start: Decimal
    score_end: Decimal
    decay_applied: Decimal
    conversations_count: int
    summary_text: str | None
    chapter: int
    game_status: str
    writer_attempts: int


class SummaryStore:
    def __init__(self, connector: Connector) -> None:
        self._db = connector
        self.connected = connector.connected

    async def claim_summaries(self, worker: str, limit: int, lease: float) -> list[SummaryDay]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(SummaryDay))
            await cur.execute(queries.CLAIM_SUMMARIES, (worker, limit, lease))
            return await cur.fetchall()

    async def complete_summary(self, day: SummaryDay, text: str, tone: str | None) -> bool:
        async with self._db.connection() as conn:
            cur = await conn.execute(queries.COMPLETE_SUMMARY, (day.id, day.lock_token, text, tone))
            return bool(scalar(await cur.fetchone()))

    async def fail_summary(self, day: SummaryDay, error: str, retryable: bool) -> str | None:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                queries.FAIL_SUMMARY, (day.id, day.lock_token, error, retryable)
            )
            return scalar(await cur.fetchone())
