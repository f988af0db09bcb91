"""The package version a database was migrated with (nikita.schema_version, migration 0018).

The migrator records its package version at the end of every run; the shim runs only against
a database migrated by its own version, because its queries and the SQL functions change
together. The fix is always the same command, run with the installed package.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from . import __version__

FIX = "nikita-shim migrate"
_EXISTS = "SELECT to_regclass('nikita.schema_version') IS NOT NULL"
_SCHEMA = "SELECT to_regnamespace('nikita') IS NOT NULL"
_VERSION = "SELECT version FROM nikita.schema_version"


async def fetch(conn: AsyncConnection[Any]) -> str | None:
    """The recorded version; None when the database records none (migrated before 0018)."""
    row = await (await conn.execute(_EXISTS)).fetchone()
    if not row or not row[0]:
        return None
    row = await (await conn.execute(_VERSION)).fetchone()
    return str(row[0]) if row else None


def mismatch(found: str | None, mine: str = __version__) -> str | None:
    """None when `found` is this package's version, else the message naming the fix."""
    if found == mine:
        return None
    was = "records no package version" if found is None else f"was migrated by nikita-tasks {found}"
    return (
        f"the database {was}, this is nikita-tasks {mine}: run `{FIX}` "
        "(with DATABASE_URL or --database-url) from this installation, then start again"
    )


async def check_url(url: str, connect_timeout: float) -> str | None:
    """mismatch() of the database at `url` (opens and closes its own connection); None when
    the database has no schema nikita at all: not migrated, which the health views report."""
    async with await AsyncConnection.connect(
        url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
    ) as conn:
        row = await (await conn.execute(_SCHEMA)).fetchone()
        if not row or not row[0]:
            return None
        return mismatch(await fetch(conn))
