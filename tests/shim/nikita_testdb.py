"""Helpers shared by the pytest suites: where the project is, and how to migrate a database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[2]


def database_url(base: str, dbname: str) -> str:
    """The URL of another database on the same cluster as `base`."""
    return make_conninfo(base, dbname=dbname)


def run_migrate(url: str, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the project's psql-only migration script against `url`."""
    return subprocess.run(
        [str(root / "scripts" / "migrate.sh")],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
