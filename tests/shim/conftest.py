"""Database fixtures shared by the suites that need a database (db/ and e2e/; unit/ needs none).

Layout: unit/ imports the shim and needs no database; db/ drives the database from Python
(jobs, queue concurrency, NOTIFY, plans, migrate, security, cron); e2e/ runs the real shim
against fake providers (e2e/fakes). Each level's conftest.py holds the fixtures of that level.

The cluster is, in order: TEST_DATABASE_URL's (make test sets it), the embedded cluster of
scripts/db.sh, a testcontainers PostgreSQL when a Docker engine answers; otherwise the tests
fail with a message saying so. pytest's own postgres plugins are not used: they start clusters
as root and drop databases with force, both of which break on this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from nikita_testdb import ROOT, database_url, run_migrate


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A superuser (or CREATEDB) URL on the cluster the tests use."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    db_script = ROOT / "scripts" / "db.sh"
    up = subprocess.run([str(db_script), "up"], capture_output=True, text=True, check=False)
    if up.returncode == 0:
        yield up.stdout.strip().splitlines()[-1]
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15") as pg:
            yield pg.get_connection_url(driver=None)
        return
    pytest.fail(
        "no PostgreSQL for the tests: set TEST_DATABASE_URL, or let scripts/db.sh start the "
        f"embedded cluster (it said: {up.stderr.strip()}), or start a Docker engine",
        pytrace=False,
    )


def _create_database(admin: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        conn.execute(stmt)


def _drop_database(admin: str, name: str) -> None:
    # FORCE is safe here: these are throwaway databases, never the pg_cron database.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def admin_url(cluster_url: str) -> str:
    return cluster_url


@pytest.fixture
def empty_database(admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of brand-new, unmigrated databases; all are dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"nikita_empty_{uuid.uuid4().hex[:12]}"
        _create_database(admin_url, name)
        made.append(name)
        return database_url(admin_url, name)

    yield make
    for name in made:
        _drop_database(admin_url, name)


@pytest.fixture(scope="session")
def template_database(admin_url: str) -> Iterator[str]:
    """A migrated database used as the template of every `db_url`."""
    name = f"nikita_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _create_database(admin_url, name)
    result = run_migrate(database_url(admin_url, name))
    if result.returncode != 0:
        _drop_database(admin_url, name)
        pytest.fail(f"migrate failed:\n{result.stderr}", pytrace=False)
    yield name
    _drop_database(admin_url, name)


@pytest.fixture
def db_url(admin_url: str, template_database: str) -> Iterator[str]:
    """A brand-new migrated database for one test: empty tables, every function."""
    name = f"nikita_t_{uuid.uuid4().hex[:12]}"
    _create_database(admin_url, name, template=template_database)
    yield database_url(admin_url, name)
    _drop_database(admin_url, name)
