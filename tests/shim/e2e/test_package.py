"""The package carries its SQL (issue 12 part 4): a wheel built from this checkout, installed
into a fresh virtualenv, brings an empty database to the schema scripts/migrate.sh makes with
`nikita-shim migrate`; a second run changes nothing; the installed shim refuses (`run`, `check`)
a database migrated by another package version and names the command that fixes it.

One wheel build and one virtualenv per module (tens of seconds; the dependencies come from the
package index)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fakes.shim import shim_env
from fakes.telegram import TOKEN

from nikita_shim import __version__
from nikita_testdb import ROOT, run_migrate

# the schema as migrate leaves it, without times: relations, functions (with their bodies),
# constraints, policies, the recorded migrations and the recorded version
SCHEMA = """
SELECT item FROM (
    SELECT 'rel:' || c.oid::regclass::text || ':' || c.relkind::text FROM pg_class c
        WHERE c.relnamespace = 'nikita'::regnamespace
    UNION ALL
    SELECT 'fn:' || p.oid::regprocedure::text || ':' || md5(p.prosrc) FROM pg_proc p
        WHERE p.pronamespace = 'nikita'::regnamespace
    UNION ALL
    SELECT 'con:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'nikita'::regnamespace
    UNION ALL
    SELECT 'pol:' || policyname || ':' || coalesce(qual, '') FROM pg_policies
        WHERE schemaname = 'nikita'
    UNION ALL
    SELECT 'ext:' || extname FROM pg_extension
    UNION ALL
    SELECT 'mig:' || version || ':' || checksum FROM nikita.schema_migrations
    UNION ALL
    SELECT 'ver:' || version FROM nikita.schema_version
) AS items(item) ORDER BY item
"""


def schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(SCHEMA).fetchall()]


def migrated_at(url: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT migrated_at FROM nikita.schema_version").fetchone()
        assert row is not None
        return row[0]


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("package")
    wheels = tmp / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", str(ROOT), "--no-deps", "-w", str(wheels)], check=True, timeout=600
    )
    (wheel,) = wheels.glob("nikita_tasks-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for part in (
        "scripts/migrate.sh",
        "scripts/cron.sh",
        "cron/wanted.sql",
        "sql/0001_schema.sql",
        "sql/CHECKSUMS.previous",
        "functions/claim_events.sql",
        "cron/schedule.sql",
    ):
        assert f"nikita_shim/_sql/{part}" in names, part
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=120)
    bin_ = tmp / "venv" / "bin"
    subprocess.run(
        [
            str(bin_ / "python"),
            "-m",
            "pip",
            "-q",
            "--disable-pip-version-check",
            "install",
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    return bin_


def shim(
    bin_: Path, *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    # PATH without this test's own virtualenv: only the installed package runs
    return subprocess.run(
        [str(bin_ / "nikita-shim"), *args],
        # NIKITA_CRON_FIND=no: a throwaway database on the shared cluster must not schedule
        # pg_cron jobs (their names would collide with the project database's), as test.sh does
        env={
            "PATH": f"{bin_}:/usr/local/bin:/usr/bin:/bin",
            "PTB_TIMEDELTA": "1",
            "NIKITA_CRON_FIND": "no",
            **env,
        },
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_installed_package_migrates_an_empty_database(
    venv_bin: Path, empty_database: Callable[[], str]
) -> None:
    url, reference = empty_database(), empty_database()
    assert run_migrate(reference).returncode == 0

    first = shim(venv_bin, "migrate", "--database-url", url, env={})
    assert first.returncode == 0, first.stderr
    assert "applying 0001_schema" in first.stderr
    assert f"schema version {__version__}" in first.stderr
    assert schema(url) == schema(reference)
    assert f"ver:{__version__}" in schema(url)
    stamp = migrated_at(url)

    again = shim(venv_bin, "migrate", env={"DATABASE_URL": url})
    assert again.returncode == 0, again.stderr
    assert "applying" not in again.stderr and "0 migration(s) applied" in again.stderr
    assert schema(url) == schema(reference)
    assert migrated_at(url) == stamp  # a no-op: the version row is not even rewritten


def test_the_installed_migrator_refuses_an_edited_applied_migration(
    venv_bin: Path, empty_database: Callable[[], str]
) -> None:
    url = empty_database()
    assert run_migrate(url).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE nikita.schema_migrations SET checksum = 'x' "
            "WHERE version = '0003_queue_user_pending_index'"
        )
    result = shim(venv_bin, "migrate", "--database-url", url, env={})
    assert result.returncode == 3, result.stderr
    assert "0003_queue_user_pending_index was already applied with checksum x" in result.stderr


def test_another_package_version_is_refused_until_migrate(
    venv_bin: Path, empty_database: Callable[[], str]
) -> None:
    url = empty_database()
    assert shim(venv_bin, "migrate", "--database-url", url, env={}).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE nikita.schema_version SET version = '0.0.9'")

    check = shim(venv_bin, "check", env={"DATABASE_URL": url})
    assert check.returncode == 2, check  # CRITICAL: the shim will not run against it
    assert check.stdout.startswith("NIKITA-SHIM CRITICAL - schema version: "), check.stdout
    assert "migrated by nikita-tasks 0.0.9" in check.stdout
    assert "`nikita-shim migrate`" in check.stdout
    status = shim(venv_bin, "status", env={"DATABASE_URL": url})
    assert status.returncode == 0 and "migrated by nikita-tasks 0.0.9" in status.stdout

    env = shim_env(url) | {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": "http://127.0.0.1:9"}
    # refused at once; a shim that started instead would run until the timeout fails the test
    run = shim(venv_bin, "run", env=env, timeout=60)
    assert run.returncode == 3, run
    assert "migrated by nikita-tasks 0.0.9" in run.stderr + run.stdout
    assert "`nikita-shim migrate`" in run.stderr + run.stdout

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM nikita.schema_version")  # as migrated before 0018 recorded it
    check = shim(venv_bin, "check", env={"DATABASE_URL": url})
    assert check.returncode == 2 and "records no package version" in check.stdout

    fixed = shim(venv_bin, "migrate", env={"DATABASE_URL": url})
    assert fixed.returncode == 0, fixed.stderr
    check = shim(venv_bin, "check", env={"DATABASE_URL": url})
    assert check.returncode in (0, 1), check  # healthy or not, no longer refused
    assert "schema version" not in check.stdout
