#!/usr/bin/env bash
# make test: a fresh, migrated test database; pg_prove over tests/sql; pytest over tests/shim
# (unit/, db/, e2e/); lint. `--lint-only` runs just the lint part (make lint).
#
#   scripts/test.sh tests/sql/decay.sql tests/shim/db/test_migrate.py::test_x ...
# runs only those: pgTAP files (*.sql) with pg_prove, anything else with pytest; no lint.
#
# The cluster is DATABASE_URL's when set (the role needs CREATEDB), else the embedded one.
# The project database itself is migrated too, so its cron schedule is current.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PY=.venv/bin/python
lint_only=false
[ "${1:-}" = "--lint-only" ] && lint_only=true && shift
sql_only=()
py_only=()
for arg in "$@"; do
    case "$arg" in
        *.sql) sql_only+=("$arg") ;;
        *) py_only+=("$arg") ;;
    esac
done
some=false
[ $# -gt 0 ] && some=true

if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL=$(scripts/db.sh up)
fi
export DATABASE_URL
# Test databases get no pg_cron jobs from the project database's pg_cron (scripts/cron.sh).
export NIKITA_CRON_FIND=no

# The same cluster, another database (psql takes key=value strings as well as URLs).
db_url() { "$PY" scripts/conninfo.py with-db "$DATABASE_URL" "$1"; }

testdb="nikita_test_$$"
TEST_DATABASE_URL=$(db_url "$testdb")
psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL")

cleanup() {
    "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS $testdb" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"${psql_admin[@]}" -c "CREATE DATABASE $testdb"
psql -X -q -v ON_ERROR_STOP=1 -d "$TEST_DATABASE_URL" \
    -c 'CREATE EXTENSION IF NOT EXISTS pgtap' -c 'CREATE EXTENSION IF NOT EXISTS plpgsql_check' \
    >/dev/null
DATABASE_URL="$TEST_DATABASE_URL" scripts/migrate.sh
# The project database (where pg_cron lives) gets the same code and schedule.
scripts/migrate.sh

status=0
step() { printf '\n== %s\n' "$*"; }

existing() { local d; for d in "$@"; do [ -e "$d" ] && echo "$d"; done; }

lint() {
    step "lint: sqlfluff"
    # shellcheck disable=SC2046
    .venv/bin/sqlfluff lint --processes 2 $(existing sql functions cron) || status=1
    step "lint: plpgsql_check"
    psql -X -q -v ON_ERROR_STOP=1 -d "$TEST_DATABASE_URL" -f scripts/plpgsql_check.sql || status=1
    step "lint: ruff"
    # shellcheck disable=SC2046
    .venv/bin/ruff check $(existing shim tests bench scripts) || status=1
    # shellcheck disable=SC2046
    .venv/bin/ruff format --check $(existing shim tests bench scripts) || status=1
}

if $lint_only; then
    lint
    exit $status
fi

export TEST_DATABASE_URL
export NIKITA_CRON_DATABASE_URL="$DATABASE_URL"

if $some; then
    # pg_prove reads a plain database name, not a key=value string: hand it libpq's variables.
    if [ ${#sql_only[@]} -gt 0 ]; then
        step "pgTAP (${sql_only[*]})"
        (
            eval "$("$PY" scripts/conninfo.py pg-env "$TEST_DATABASE_URL")"
            pg_prove "${sql_only[@]}"
        ) || status=1
    fi
    if [ ${#py_only[@]} -gt 0 ]; then
        step "pytest (${py_only[*]})"
        "$PY" -m pytest -q -p no:cacheprovider "${py_only[@]}" || status=1
    fi
    exit $status
fi

# tests/sql/_shared/ holds included helpers (*.psql), which --ext .sql leaves out.
step "pgTAP (pg_prove tests/sql)"
(
    eval "$("$PY" scripts/conninfo.py pg-env "$TEST_DATABASE_URL")"
    pg_prove --ext .sql -r tests/sql
) || status=1

step "pytest (tests/shim: unit, db, e2e)"
"$PY" -m pytest -q -p no:cacheprovider tests/shim || status=1

lint

step "result"
if [ $status = 0 ]; then echo "make test: all suites passed"; else echo "make test: FAILED"; fi
exit $status
