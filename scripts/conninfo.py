#!/usr/bin/env python3
"""Connection strings for the shell scripts (run with the project venv's python).

conninfo.py with-db URL DBNAME   the same server and credentials, another database
conninfo.py pg-env URL           `export PGHOST=...` lines for tools that take no URL
                                 (pg_prove reads a plain database name)
"""

from __future__ import annotations

import shlex
import sys

from psycopg.conninfo import conninfo_to_dict, make_conninfo

PG_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "with-db":
        print(make_conninfo(argv[1], dbname=argv[2]))
        return 0
    if len(argv) == 2 and argv[0] == "pg-env":
        for key, value in conninfo_to_dict(argv[1]).items():
            if key in PG_ENV:
                print(f"export {PG_ENV[key]}={shlex.quote(str(value))}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
