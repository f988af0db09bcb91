#!/usr/bin/env bash
# Decay history, per run or per local day: one local day of hourly decay runs, what it costs.
#
#   bench/scale_bench_history.sh [PLAYERS] [REF]    # default 100000 players; REF: the per-run
#                                                   # code to compare with (default: the commit
#                                                   # before sql/0022)
#
# For each of two codes, the worktree's (one score_history row per player per local day,
# sql/0022) and REF's (one row per run; exported with git archive into a temporary directory),
# in its own database on DATABASE_URL's cluster (default: the embedded one): PLAYERS idle
# players in UTC, chapters 1..5 in turn, decayed through 2026-11-28 00:00Z; then the 24 hourly
# runs of 2026-11-28 (apply_decay(p_now) at 01:00Z .. 24:00Z, each one transaction, as the
# owner, each its own transaction, a VACUUM of score_history after each as autovacuum would
# between hourly runs). Measured: the day's decay time (sum of the runs) and VACUUM time, WAL
# of both (pg_current_wal_lsn), rows and size of score_history (table + indexes) after the
# day. Prints a markdown table; the databases are dropped.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
players=${1:-100000}
ref=${2:-$(git log -n1 --format=%H -- sql/0022_decay_history_per_day.sql)~1}
base=${DATABASE_URL:-$(scripts/db.sh up)}
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
old_dir=$(mktemp -d)
trap 'rm -rf "$old_dir"' EXIT
git archive "$ref" | tar -x -C "$old_dir"
ln -s "$here/.venv" "$old_dir/.venv"

# day DIR LABEL: one day of runs with the code in DIR; prints one table row.
day() {
    local dir=$1 label=$2 db=nikita_bench_history url
    url=$(.venv/bin/python scripts/conninfo.py with-db "$base" "$db")
    "${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    (cd "$dir" && DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh >/dev/null 2>&1)
    "${psql_[@]}" -d "$url" <<SQL
INSERT INTO nikita.users (telegram_id, chapter, relationship_score, onboarding_status,
    timezone, last_interaction_at, decayed_through, created_at)
SELECT g, 1 + g % 5, 80, 'completed', 'UTC', timestamptz '2026-11-25 00:00Z',
       timestamptz '2026-11-28 00:00Z', timestamptz '2026-11-01 00:00Z'
FROM generate_series(1, $players) AS g;
VACUUM ANALYZE nikita.users;
CHECKPOINT;
SQL
    # Each run its own transaction (psql's autocommit), as the hourly job's; a VACUUM of
    # score_history after each, as autovacuum would between hourly runs (its time apart).
    {
        echo "CREATE TEMP TABLE m (run_ms float8, vacuum_ms float8);"
        echo "SELECT pg_current_wal_lsn() AS lsn \\gset"
        for h in $(seq 1 24); do
            echo "SELECT clock_timestamp() AS t0 \\gset"
            echo "SELECT nikita.apply_decay(timestamptz '2026-11-28 00:00Z' + $h * interval '1 hour');"
            echo "SELECT clock_timestamp() AS t1 \\gset"
            echo "VACUUM nikita.score_history;"
            echo "INSERT INTO m SELECT extract(EPOCH FROM timestamptz :'t1' - :'t0') * 1000,"
            echo "    extract(EPOCH FROM clock_timestamp() - :'t1') * 1000;"
        done
        echo "SELECT round(sum(run_ms)), round(sum(vacuum_ms)),"
        echo "    pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn'),"
        echo "    (SELECT count(*) FROM nikita.score_history),"
        echo "    pg_total_relation_size('nikita.score_history') FROM m;"
    } | "${psql_[@]}" -d "$url" -tA -F' ' -o /dev/stdout 2>/dev/null | tail -1
} 2>/dev/null

row() {
    local label=$1 ms vac wal rows size
    read -r ms vac wal rows size < <(day "$2" "$label")
    "${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS nikita_bench_history WITH (FORCE)"
    python3 -c '
import sys
label, n, ms, vac, wal, rows, size = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
k = 1e6 / n
print(f"| {label} | {ms / 1000:.1f} s | {vac / 1000:.1f} s | {wal * k / 2**30:.2f} GiB |"
      f" {rows * k / 1e6:.1f} M | {size * k / 2**30:.2f} GiB |")
' "$label" "$players" "$ms" "$vac" "$wal" "$rows" "$size"
}

echo "One local day of 24 hourly decay runs, $players players (figures scaled to 1,000,000"
echo "players per day); load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
echo
echo "Decay and VACUUM times are for the $players players; WAL, rows and size per 1,000,000."
echo
echo "| score_history | decay, 24 runs | VACUUMs | WAL (runs + VACUUMs) | rows after the day | table + indexes after the day |"
echo "|---|---:|---:|---:|---:|---:|"
row "per run (${ref:0:12})" "$old_dir"
row "per local day (this tree)" "$here"
row "per run (${ref:0:12}), again" "$old_dir"
row "per local day (this tree), again" "$here"
