"""The psql-only migration runner: idempotent, and loud about an edited applied migration."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg

from nikita_testdb import ROOT, run_migrate

# Everything migrate can create or change, as one comparable snapshot.
CATALOG_FINGERPRINT = """
SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (
    SELECT 'rel:' || c.oid::regclass::text || ':' || c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'nikita'
    UNION ALL
    SELECT 'fn:' || p.oid::regprocedure::text || ':' || md5(p.prosrc) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'nikita'
    UNION ALL
    SELECT 'con:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'nikita'::regnamespace
    UNION ALL
    SELECT 'row:' || version || ':' || checksum || ':' || applied_at
        FROM nikita.schema_migrations
    UNION ALL
    SELECT 'setting:' || key || ':' || coalesce(value::text, 'null') FROM nikita.settings
) AS items(item)
"""


def fingerprint(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(CATALOG_FINGERPRINT).fetchone()
        assert row is not None
        return str(row[0])


def test_migrate_twice_is_a_no_op(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    first = run_migrate(url)
    assert first.returncode == 0, first.stderr
    assert "applying 0001_schema" in first.stderr
    before = fingerprint(url)

    second = run_migrate(url)
    assert second.returncode == 0, second.stderr
    assert "applying" not in second.stderr
    assert "0 migration(s) applied" in second.stderr
    assert fingerprint(url) == before


def test_every_migration_is_recorded_with_its_checksum(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    assert run_migrate(url).returncode == 0
    files = sorted((ROOT / "sql").glob("[0-9][0-9][0-9][0-9]_*.sql"))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT version, checksum FROM nikita.schema_migrations ORDER BY version"
        ).fetchall()
    import hashlib

    assert rows == [(f.stem, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]


def copy_project(dest: Path) -> Path:
    for part in ("scripts", "sql", "functions", "cron"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, dest / part)
    return dest


def test_an_edited_applied_migration_is_refused(
    empty_database: Callable[[], str], tmp_path: Path
) -> None:
    url = empty_database()
    project = copy_project(tmp_path / "project")
    assert run_migrate(url, project).returncode == 0
    before = fingerprint(url)

    first = sorted((project / "sql").glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    result = run_migrate(url, project)

    assert result.returncode == 3
    assert "0001_schema was already applied with checksum" in result.stderr
    assert fingerprint(url) == before


def test_a_failing_migration_leaves_nothing_behind(
    empty_database: Callable[[], str], tmp_path: Path
) -> None:
    url = empty_database()
    project = copy_project(tmp_path / "project")
    (project / "sql" / "9999_broken.sql").write_text(
        "CREATE TABLE nikita.half_done (id int);\nSELECT 1/0;\n"
    )
    result = run_migrate(url, project)
    assert result.returncode != 0
    assert "division by zero" in result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('nikita.half_done')").fetchone() == (None,)
        recorded = conn.execute(
            "SELECT count(*) FROM nikita.schema_migrations WHERE version = '9999_broken'"
        ).fetchone()
        assert recorded == (0,)
