#!/usr/bin/env bash
# Schedule or remove the package's pg_cron jobs for one game database, with bash and psql alone.
#
#   DATABASE_URL=postgresql://.../game scripts/cron.sh schedule|remove
#
# Where pg_cron lives (it lives in exactly one database of a cluster, cron.database_name):
#   1. in the game's database: the jobs are scheduled there;
#   2. CRON_DATABASE_URL is set: that database (another database of the same cluster,
#      e.g. `postgres` on RDS, Cloud SQL, Azure, Neon);
#   3. otherwise the database named by `SHOW cron.database_name` on the game's server, reached
#      with the game's connection (psql's \connect keeps host, port, user and password);
#      NIKITA_CRON_FIND=no turns this off (scripts/test.sh: test databases get no jobs).
# From there cron/schedule.sql schedules the jobs INTO the game's database
# (cron.schedule_in_database), then cron/record.sql records their job ids in the game's
# nikita.cron_jobs. Says what it did on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
: "${DATABASE_URL:?DATABASE_URL must point at the game database}"
action=${1:-}
case "$action" in
    schedule) file=schedule.sql ;;
    remove) file=unschedule.sql ;;
    *) echo "usage: $0 schedule|remove" >&2; exit 2 ;;
esac
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
say() { printf 'cron: %s\n' "$*" >&2; }

game_db=$("${psql_[@]}" -d "$DATABASE_URL" -tAc 'SELECT current_database()')
local_cron=$("${psql_[@]}" -d "$DATABASE_URL" -tAc \
    "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")
connect=
if [ "$local_cron" = 1 ]; then
    cron_url=$DATABASE_URL
elif [ -n "${CRON_DATABASE_URL:-}" ]; then
    cron_url=$CRON_DATABASE_URL
elif [ "${NIKITA_CRON_FIND:-yes}" = no ]; then
    say "notice: pg_cron is not in database $game_db and NIKITA_CRON_FIND=no: nothing to $action"
    exit 0
else
    # The GUC exists only where pg_cron is preloaded; missing_ok so its absence is a notice.
    cron_db=$("${psql_[@]}" -d "$DATABASE_URL" -tAc \
        "SELECT current_setting('cron.database_name', true)")
    if [ -z "$cron_db" ] || [ "$cron_db" = "$game_db" ]; then
        if [ "$action" = schedule ]; then
            say "notice: pg_cron is not installed in this cluster (not in shared_preload_libraries); jobs are not scheduled (see docs/install.md)"
        else
            say "notice: pg_cron is not installed in this cluster: no job to remove"
        fi
        exit 0
    fi
    cron_url=$DATABASE_URL
    connect=$cron_db
fi

# Run SQL (stdin) in the cron database, \connect-ing first when it was found by name.
in_cron() {
    { [ -n "$connect" ] && printf '\\connect %s\n' "$connect"; cat; } \
        | "${psql_[@]}" -d "$cron_url" -tA "$@" -f -
}

if ! echo "SELECT 1 FROM pg_extension WHERE extname = 'pg_cron';" | in_cron | grep -q 1; then
    say "error: pg_cron is not installed in the cron database ${cron_db:-of CRON_DATABASE_URL};"
    say "create it there (CREATE EXTENSION pg_cron) or set CRON_DATABASE_URL (docs/install.md)"
    exit 4
fi

jobs=$("${psql_[@]}" -d "$DATABASE_URL" -tA -f "$here/cron/wanted.sql")
out=$({ echo 'BEGIN;'; cat "$here/cron/$file"; echo 'COMMIT;'; } \
    | in_cron -v target_db="$game_db" -v jobs="$jobs")
result=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
cron_where=$(echo 'SELECT current_database();' | in_cron | tail -n 1)
"${psql_[@]}" -d "$DATABASE_URL" --single-transaction -v result="$result" \
    -v cron_db="$cron_where" -f "$here/cron/record.sql" >/dev/null
if [ "$cron_where" = "$game_db" ]; then
    say "$action: pg_cron jobs of database $game_db, in pg_cron of the same database"
else
    say "$action: pg_cron jobs of database $game_db, kept by pg_cron in database $cron_where (cron.schedule_in_database)"
fi
