"""The conversation operations (claim, complete, fail), over the connector; rows by name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from . import queries
from .connector import Connector, scalar


@dataclass(slots=True)
class Conversation:
    """A row returned by nikita.claim_conversations(); given to the processor."""

    id: UUID
    lock_token: UUID
    user_id: UUID
    platform: str
    started_at: datetime | None
    ended_at: datetime | None
    processing_attempts: int


class ConversationStore:
    def __init__(self, connector: Connector) -> None:
        self._db = connector
        self.connected = connector.connected

    async def claim_conversations(
        self, worker: str, limit: int, lease: float
    ) -> list[Conversation]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Conversation))
            await cur.execute(queries.CLAIM_CONVERSATIONS, (worker, limit, lease))
            return await cur.fetchall()

    async def complete_conversation(
        self, conv: Conversation, summary: str | None, emotional_tone: str | None
    ) -> bool:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                queries.COMPLETE_CONVERSATION, (conv.id, conv.lock_token, summary, emotional_tone)
            )
            return bool(scalar(await cur.fetchone()))

    async def fail_conversation(self, conv: Conversation, error: str) -> str | None:
        async with self._db.connection() as conn:
            cur = await conn.execute(queries.FAIL_CONVERSATION, (conv.id, conv.lock_token, error))
            return scalar(await cur.fetchone())
