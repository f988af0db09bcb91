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
# owner). Measured: the day's decay time (sum of the runs), WAL (pg_current_wal_lsn), rows
# and size of score_history (table + indexes) after the day, then after a VACUUM (what
# autovacuum makes reusable). Prints a markdown table; the databases are dropped.
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
    "${psql_[@]}" -d "$url" -tA -F' ' <<'SQL'
CREATE TEMP TABLE m AS SELECT pg_current_wal_lsn() AS lsn, 0::double precision AS ms;
DO $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR h IN 1..24 LOOP
        t0 := clock_timestamp();
        PERFORM nikita.apply_decay(timestamptz '2026-11-28 00:00Z' + h * interval '1 hour');
        UPDATE m SET ms = ms + extract(EPOCH FROM clock_timestamp() - t0) * 1000;
    END LOOP;
END
$$;
SELECT round(ms), pg_wal_lsn_diff(pg_current_wal_lsn(), lsn),
       (SELECT count(*) FROM nikita.score_history),
       pg_total_relation_size('nikita.score_history')
FROM m;
SQL
} 2>/dev/null

row() {
    local label=$1 ms wal rows size after
    read -r ms wal rows size < <(day "$2" "$label")
    after=$("${psql_[@]}" -d "$(.venv/bin/python scripts/conninfo.py with-db "$base" nikita_bench_history)" \
        -tA -c "VACUUM nikita.score_history" -c "SELECT pg_total_relation_size('nikita.score_history')")
    "${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS nikita_bench_history WITH (FORCE)"
    python3 -c '
import sys
label, n, ms, wal, rows, size, after = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
k = 1e6 / n
print(f"| {label} | {ms / 1000:.1f} s | {wal * k / 2**30:.2f} GiB | {rows * k / 1e6:.1f} M |"
      f" {size * k / 2**30:.2f} GiB | {after * k / 2**30:.2f} GiB |")
' "$label" "$players" "$ms" "$wal" "$rows" "$size" "$after"
}

echo "One local day of 24 hourly decay runs, $players players (figures scaled to 1,000,000"
echo "players per day); load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
echo
echo "| score_history | decay time, 24 runs | WAL | rows written | table + indexes after the day | after VACUUM |"
echo "|---|---:|---:|---:|---:|---:|"
row "per run (${ref:0:12})" "$old_dir"
row "per local day (this tree)" "$here"
row "per run (${ref:0:12}), again" "$old_dir"
row "per local day (this tree), again" "$here"
