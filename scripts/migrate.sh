#!/usr/bin/env bash
# Install or upgrade nikita-tasks in one database with bash and psql alone.
#
#   DATABASE_URL=postgresql://... scripts/migrate.sh
#
# NIKITA_MIGRATE_ROOT: the directory holding sql/, functions/, cron/ (default: this checkout);
# `nikita-shim migrate` runs this same script over the copy bundled in the Python package.
# NIKITA_PACKAGE_VERSION: the package version recorded in nikita.schema_version (default: the
# checkout's shim/nikita_shim/__init__.py); the shim refuses a database of another version.
#
# 1. sql/NNNN_*.sql, in order, each once, each in one transaction, recorded with its sha256 in
#    nikita.schema_migrations. An applied file whose checksum changed is an error, unless
#    sql/CHECKSUMS.previous lists the recorded checksum for that version: an earlier text of
#    the file that differs from it in comments only, or by a statement removal documented in
#    scripts/migration_comments.py (REMOVED_STATEMENTS; it checks that and writes the line); the
#    current checksum is then recorded, and migrate says so.
# 2. functions/*.sql, all re-applied (CREATE OR REPLACE), in one transaction.
# 3. scripts/cron.sh schedule: the package's pg_cron jobs, from pg_cron in this database or in
#    the cluster's cron.database_name (CRON_DATABASE_URL), or a notice without pg_cron.
# 4. The package version, into nikita.schema_version (migration 0018), when it differs.
# Exit 3: an applied migration changed. Exit 4: group roles missing and no CREATEROLE.
# Running it twice changes nothing.
set -euo pipefail

here=${NIKITA_MIGRATE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
: "${DATABASE_URL:?DATABASE_URL must point at the database to migrate}"
version_=${NIKITA_PACKAGE_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' \
    "$here/shim/nikita_shim/__init__.py" 2>/dev/null || true)}
case "$version_" in
    [0-9]*) ;;
    *) echo "migrate: cannot tell the package version (set NIKITA_PACKAGE_VERSION)" >&2; exit 2 ;;
esac
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc -d "$DATABASE_URL")

say() { printf 'migrate: %s\n' "$*" >&2; }

"${psql_[@]}" <<'SQL'
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS nikita;
CREATE TABLE IF NOT EXISTS nikita.schema_migrations (
    version text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON nikita.schema_migrations FROM PUBLIC;
SQL

# The group roles, nikita_jobs and nikita_ops are created by 0002, 0011 and 0020 when missing, which needs
# CREATEROLE. Without it they must exist already: say exactly what to pre-create (exit 4).
missing_roles=$("${psql_[@]}" -tAc "
    SELECT string_agg(r, ' ' ORDER BY r) FROM unnest(ARRAY['nikita_worker', 'nikita_app',
        'nikita_readonly', 'nikita_jobs', 'nikita_ops']) AS r
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)
      AND NOT (SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles
               WHERE rolname = current_user)")
if [ -n "$missing_roles" ]; then
    say "ERROR: roles $missing_roles are missing and this role has no CREATEROLE to create them."
    say "Have an administrator create them once per cluster (docs/install.md, \"Installing without CREATEROLE\"):"
    for r in $missing_roles; do
        case $r in
            nikita_jobs) say "  CREATE ROLE nikita_jobs LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;"
                         say "  ALTER ROLE nikita_jobs SET search_path = pg_catalog, pg_temp;" ;;
            *) say "  CREATE ROLE $r NOLOGIN;" ;;
        esac
    done
    exit 4
fi

applied=0
# "version sha256" lines: listed predecessors of a migration (# starts a comment).
previous="$here/sql/CHECKSUMS.previous"
listed_previous() {
    [ -f "$previous" ] && grep -qE "^$1[[:space:]]+$2[[:space:]]*(#.*)?\$" "$previous"
}

for f in "$here"/sql/[0-9][0-9][0-9][0-9]_*.sql; do
    version=$(basename "$f" .sql)
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    recorded=$("${psql_[@]}" -tAc \
        "SELECT checksum FROM nikita.schema_migrations WHERE version = '$version'")
    if [ -n "$recorded" ]; then
        if [ "$recorded" != "$sum" ] && listed_previous "$version" "$recorded"; then
            "${psql_[@]}" -c "UPDATE nikita.schema_migrations SET checksum = '$sum'
                WHERE version = '$version' AND checksum = '$recorded'" >/dev/null
            say "$version: checksum $recorded is a listed predecessor (sql/CHECKSUMS.previous); recorded $sum"
            continue
        fi
        if [ "$recorded" != "$sum" ]; then
            say "ERROR: $version was already applied with checksum $recorded but the file now has $sum."
            say "An applied migration must not change: revert the edit and add a new migration."
            exit 3
        fi
        continue
    fi
    say "applying $version"
    # The lock and the re-check make two concurrent migrate runs apply each file once.
    {
        echo "SET client_min_messages = warning;"
        echo "SELECT pg_advisory_xact_lock(hashtext('nikita.migrate'));"
        echo "DO \$\$ BEGIN IF EXISTS (SELECT 1 FROM nikita.schema_migrations WHERE version = '$version') THEN RAISE EXCEPTION 'migration % applied concurrently', '$version'; END IF; END \$\$;"
        cat "$f"
        echo
        echo "INSERT INTO nikita.schema_migrations (version, checksum) VALUES ('$version', '$sum');"
    } | "${psql_[@]}" --single-transaction -f - >/dev/null
    applied=$((applied + 1))
done

# Function files may call each other in any order: bodies are checked when they run, and by
# `make lint` (plpgsql_check), not at CREATE time.
{
    echo "SET client_min_messages = warning;"
    echo "SET check_function_bodies = off;"
    for f in "$here"/functions/*.sql; do
        [ -e "$f" ] || continue
        echo "\\echo functions/$(basename "$f")"
        cat "$f"
        echo
    done
} | "${psql_[@]}" --single-transaction -f - >/dev/null

DATABASE_URL="$DATABASE_URL" "$here/scripts/cron.sh" schedule
# Last, so that a run that stopped early never claims the schema is this version's.
"${psql_[@]}" -v v="$version_" <<'SQL'
INSERT INTO nikita.schema_version (version) VALUES (:'v')
ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, migrated_at = now()
WHERE nikita.schema_version.version IS DISTINCT FROM excluded.version;
SQL
say "done ($applied migration(s) applied; schema version $version_)"
