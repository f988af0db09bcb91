"""`nikita-shim migrate`: scripts/migrate.sh over the SQL bundled in this package.

There is one migrator: the wheel carries scripts/migrate.sh with sql/, functions/ and cron/
(nikita_shim/_sql, copied at build time by setup.py), and this runs it with that directory as
its root and this package's version to record. From a source checkout (editable install) the
checkout itself is the root. Exit codes are the script's (3: an applied migration changed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import __version__

EXIT_NO_PSQL = 2


def sql_root() -> Path | None:
    """The directory holding scripts/migrate.sh, sql/, functions/, cron/ for this package."""
    here = Path(__file__).resolve().parent
    for root in (here / "_sql", here.parents[1]):
        if (root / "scripts" / "migrate.sh").is_file() and (root / "sql").is_dir():
            return root
    return None


def run(database_url: str | None) -> int:
    url = database_url or os.environ.get("DATABASE_URL")
    if not url:
        print("nikita-shim migrate: give --database-url or set DATABASE_URL", file=sys.stderr)
        return EXIT_NO_PSQL
    root = sql_root()
    if root is None:
        print(
            "nikita-shim migrate: this installation carries no SQL (a broken build?)",
            file=sys.stderr,
        )
        return EXIT_NO_PSQL
    if shutil.which("psql") is None or shutil.which("bash") is None:
        print(
            "nikita-shim migrate: needs bash and psql (the PostgreSQL client) on PATH",
            file=sys.stderr,
        )
        return EXIT_NO_PSQL
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "NIKITA_MIGRATE_ROOT": str(root),
        "NIKITA_PACKAGE_VERSION": __version__,
    }
    return subprocess.run(["bash", str(root / "scripts" / "migrate.sh")], env=env).returncode
