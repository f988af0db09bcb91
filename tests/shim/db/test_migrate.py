"""The psql-only migration runner: idempotent, and loud about an edited applied migration."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from nikita_testdb import ROOT, database_url, run_migrate

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
    # migrate records the package version it reads there (nikita.schema_version)
    (dest / "shim" / "nikita_shim").mkdir(parents=True)
    shutil.copy2(ROOT / "shim" / "nikita_shim" / "__init__.py", dest / "shim" / "nikita_shim")
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


# Comment-only edits of applied migrations (sql/CHECKSUMS.previous, scripts/migration_comments.py).


def _migration_comments() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "migration_comments", ROOT / "scripts" / "migration_comments.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recorded(url: str, version: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT checksum FROM nikita.schema_migrations WHERE version = %s", (version,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_listed_comment_only_edit_is_accepted(
    empty_database: Callable[[], str], tmp_path: Path
) -> None:
    url = empty_database()
    project = copy_project(tmp_path / "project")
    target = sorted((project / "sql").glob("0005_*.sql"))[0]
    current = target.read_bytes()
    # The install ran an earlier text of 0005 whose comments said something else.
    older = b"-- An older comment, since reworded.\n" + current
    target.write_bytes(older)
    assert run_migrate(url, project).returncode == 0
    assert _recorded(url, target.stem) == hashlib.sha256(older).hexdigest()

    target.write_bytes(current)
    with (project / "sql" / "CHECKSUMS.previous").open("a") as f:
        f.write(f"{target.stem} {hashlib.sha256(older).hexdigest()}\n")
    result = run_migrate(url, project)

    assert result.returncode == 0, result.stderr
    assert f"{target.stem}: checksum {hashlib.sha256(older).hexdigest()} is a listed" in (
        result.stderr
    )
    assert _recorded(url, target.stem) == hashlib.sha256(current).hexdigest()
    again = run_migrate(url, project)
    assert again.returncode == 0, again.stderr
    assert "listed" not in again.stderr and "0 migration(s) applied" in again.stderr


def test_a_real_edit_still_fails_when_another_text_is_listed(
    empty_database: Callable[[], str], tmp_path: Path
) -> None:
    url = empty_database()
    project = copy_project(tmp_path / "project")
    assert run_migrate(url, project).returncode == 0
    before = fingerprint(url)

    target = sorted((project / "sql").glob("0005_*.sql"))[0]
    other = sorted((project / "sql").glob("0004_*.sql"))[0]
    recorded = _recorded(url, target.stem)
    # The recorded checksum listed for another version does not excuse this one.
    with (project / "sql" / "CHECKSUMS.previous").open("a") as f:
        f.write(f"{other.stem} {recorded}\n")
    target.write_text(target.read_text() + "\nALTER TABLE nikita.users SET (fillfactor = 60);\n")
    result = run_migrate(url, project)

    assert result.returncode == 3
    assert f"{target.stem} was already applied with checksum" in result.stderr
    assert fingerprint(url) == before


def test_the_comment_check_refuses_real_edits(tmp_path: Path) -> None:
    check = _migration_comments().comment_only
    base = "-- a comment\nCREATE TABLE t (a int); /* block */\nSELECT '-- not a comment';\n"
    assert check(base, "-- reworded\n\nCREATE TABLE t (a int);\nSELECT '-- not a comment';\n")
    assert not check(base, base.replace("a int", "a bigint"))
    assert not check(base, base.replace("'-- not a comment'", "'-- other'"))
    # A comment inside a function body is part of the stored function: not comment-only.
    body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 -- one\n$$;\n"
    assert not check(body, body.replace("-- one", "-- uno"))


def test_only_the_documented_removal_is_accepted() -> None:
    mc = _migration_comments()
    old = "-- x\nCREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE TABLE t (a int);\n"
    new = "-- y\nCREATE TABLE t (a int);\n"
    assert mc.predecessor("0001_schema", old, new) == mc.REMOVED_STATEMENTS["0001_schema"][1]
    # the same removal in another migration, or anything more removed, is no predecessor
    assert mc.predecessor("0002_security", old, new) is None
    assert mc.predecessor("0001_schema", old.replace("(a int)", "(a bigint)"), new) is None
    assert mc.predecessor("0001_schema", old.replace("pgcrypto", "postgis"), new) is None
    twice = old + "CREATE EXTENSION IF NOT EXISTS pgcrypto;\n"
    assert mc.predecessor("0001_schema", twice, new) is None


def test_an_install_of_0001_with_pgcrypto_keeps_working(
    empty_database: Callable[[], str], tmp_path: Path
) -> None:
    """An install that applied 0001 before pgcrypto was dropped migrates on; a fresh install
    never creates the extension."""
    fresh = empty_database()
    assert run_migrate(fresh).returncode == 0
    with psycopg.connect(fresh) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'"
        ).fetchone() == (0,)

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history to find the earlier text in")
    url = empty_database()
    project = copy_project(tmp_path / "project")
    target = project / "sql" / "0001_schema.sql"
    current = target.read_bytes()
    older = subprocess.run(
        ["git", "-C", str(ROOT), "show", "eb7deb1:sql/0001_schema.sql"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"CREATE EXTENSION IF NOT EXISTS pgcrypto;" in older
    target.write_bytes(older)
    assert run_migrate(url, project).returncode == 0
    target.write_bytes(current)
    result = run_migrate(url, project)
    assert result.returncode == 0, result.stderr
    assert "0001_schema: checksum " + hashlib.sha256(older).hexdigest() in result.stderr
    assert _recorded(url, "0001_schema") == hashlib.sha256(current).hexdigest()


def test_every_listed_checksum_is_a_comment_only_predecessor() -> None:
    """Each line of sql/CHECKSUMS.previous names an earlier text of its migration, in git
    history, that differs from the current file in comments only."""
    listed = [
        line.split("#")[0].split()
        for line in (ROOT / "sql" / "CHECKSUMS.previous").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not listed:
        return
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history to find the earlier texts in")
    predecessor = _migration_comments().predecessor
    for version, checksum in listed:
        path = f"sql/{version}.sql"
        current = (ROOT / path).read_text()
        revs = subprocess.run(
            ["git", "-C", str(ROOT), "log", "--format=%H", "--", path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        texts = (
            subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, check=False
            ).stdout
            for rev in revs
        )
        found = next((t for t in texts if hashlib.sha256(t).hexdigest() == checksum), None)
        assert found is not None, f"{version} {checksum}: no such text in the history of {path}"
        assert predecessor(version, found.decode(), current), (
            f"{version} {checksum}: neither comment-only nor a documented removal"
        )


def test_the_0011_rewrite_is_accepted_only_as_pinned() -> None:
    mc = _migration_comments()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history to find the earlier text in")
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", "eb7deb1:sql/0011_jobs_role.sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    new = (ROOT / "sql" / "0011_jobs_role.sql").read_text()
    assert mc.predecessor("0011_jobs_role", old, new) == mc.REWRITTEN["0011_jobs_role"][2]
    assert mc.predecessor("0011_jobs_role", "-- reworded\n" + old, new) is not None
    assert mc.predecessor("0011_jobs_role", old, new + "GRANT nikita_jobs TO PUBLIC;\n") is None
    assert mc.predecessor("0012_job_catalog_internal_names", old, new) is None


def test_an_installer_without_createrole_installs_beside_pre_created_roles(
    admin_url: str,
) -> None:
    """Roles are cluster-wide and exist here (created by earlier installs, as an administrator
    would pre-create them): a database owner without CREATEROLE installs the whole schema, and
    0011 leaves nikita_jobs' comment and search_path alone, saying so."""
    installer = f"nikita_installer_{uuid.uuid4().hex[:8]}"
    dbname = f"nikita_norole_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        before = conn.execute(
            "SELECT rolconfig FROM pg_roles WHERE rolname = 'nikita_jobs'"
        ).fetchone()
        assert before is not None
        conn.execute(f"CREATE ROLE {installer} LOGIN NOCREATEROLE NOSUPERUSER")
        conn.execute(f"CREATE DATABASE {dbname} OWNER {installer}")
    try:
        url = make_conninfo(database_url(admin_url, dbname), user=installer)
        result = run_migrate(url)
        assert result.returncode == 0, result.stderr
        assert "nikita_jobs exists and " + installer + " has no CREATEROLE" in result.stderr
        assert "0 migration(s)" not in result.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM nikita.schema_migrations").fetchone() == (
                len(list((ROOT / "sql").glob("[0-9][0-9][0-9][0-9]_*.sql"))),
            )
            assert (
                conn.execute(
                    "SELECT rolconfig FROM pg_roles WHERE rolname = 'nikita_jobs'"
                ).fetchone()
                == before
            )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {installer}")
