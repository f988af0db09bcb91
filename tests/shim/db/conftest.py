"""Fixtures of the database tests driven from Python (cluster, db_url: ../conftest.py)."""

from __future__ import annotations

import os

import pytest
from psycopg.conninfo import conninfo_to_dict

from nikita_testdb import database_url


@pytest.fixture(scope="session")
def cron_database_url(cluster_url: str) -> str:
    """The database where pg_cron runs (the project database, migrated by make test)."""
    url = os.environ.get("NIKITA_CRON_DATABASE_URL")
    if url:
        return url
    params = conninfo_to_dict(cluster_url)
    return database_url(cluster_url, str(params.get("dbname", "nikita")))
