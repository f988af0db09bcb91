"""docs/schema.sql, the schema at a glance, is what a fresh migrate creates (scripts/schema.sh)."""

from __future__ import annotations

import os
import subprocess

import pytest

from nikita_testdb import ROOT


def test_docs_schema_matches_a_fresh_migrate(db_url: str) -> None:
    # db_url is a copy of the session's freshly migrated template database.
    result = subprocess.run(
        [str(ROOT / "scripts" / "schema.sh"), "--check"],
        env={**os.environ, "SCHEMA_FROM": db_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{result.stdout}\n{result.stderr}\n"
            "docs/schema.sql is out of date: run `make schema` and commit the result.",
            pytrace=False,
        )
