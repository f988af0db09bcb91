#!/usr/bin/env bash
# Decay over 100,000 and 1,000,000 eligible players, run the way pg_cron runs it:
# `CALL nikita.run_job('decay')` on its own connection, committing batch by batch.
#
#   bench/decay_bench.sh            # sizes 100000 1000000, writes bench/RESULTS-decay.md
#   bench/decay_bench.sh 100000     # other sizes
#   DECAY_BENCH_SCENARIOS=hourly bench/decay_bench.sh 1000000   # one scenario
#   DECAY_BENCH_ROUNDS=1 bench/decay_bench.sh 1000000             # rounds per line (default 3)
#
# Uses its own database, nikita_bench_decay, on DATABASE_URL's cluster (default: the embedded
# one), created fresh, migrated with scripts/migrate.sh and dropped at the end. Never the
# project database (pg_cron's).
#
# Two scenarios per size (see run_one): the hourly steady state and a catch-up run. Figures:
# the whole run (run_job's duration_ms and the wall clock of the CALL) and the longest batch
# transaction (run_job's max_batch_ms: from the batch's first statement to the end of its
# COMMIT). Each line is DECAY_BENCH_ROUNDS rounds (default 3), each on a freshly built set:
# the median and min–max of the run, the longest transaction of all rounds, and per run the
# WAL written (pg_current_wal_lsn before and after the CALL) and the growth of score_history
# (table + indexes).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
base=${DATABASE_URL:-$(scripts/db.sh up)}
db=nikita_bench_decay
url=$(.venv/bin/python scripts/conninfo.py with-db "$base" "$db")
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
results=${DECAY_BENCH_RESULTS:-bench/RESULTS-decay.md}
rounds=${DECAY_BENCH_ROUNDS:-3}

"${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
trap '"${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh 2>/dev/null  # no pg_cron jobs

# run_one SCENARIO N: set up N players, CALL run_job('decay'); prints one line
# "duration_ms wall_s max_batch_ms batches batch_size wal_bytes history_bytes".
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
run_one() {
    local scenario=$1 n=$2
    echo "decay bench: $scenario, $n players: setting up" >&2
    "${psql_[@]}" -d "$url" -c "TRUNCATE nikita.users, nikita.job_executions, nikita.scheduled_events CASCADE" 2>/dev/null
    if [ "$scenario" = hourly ]; then
        # Idle for days, decayed through an hour ago, in the 16 zones (one per UTC offset) where
        # it is between 01:00 and 11:00 now, so that no player has reached the day's cap:
        # every one of them decays. Each has the previous run's history row.
        "${psql_[@]}" -d "$url" <<SQL
CREATE TEMP TABLE zones AS
SELECT row_number() OVER (ORDER BY utc_offset) - 1 AS i, name
FROM (SELECT DISTINCT ON (utc_offset) name, utc_offset FROM pg_timezone_names
      WHERE name ~ '^(Europe|Asia|America|Australia|Pacific|Africa)/'
        AND (now() AT TIME ZONE name)::time BETWEEN '01:00' AND '11:00'
      ORDER BY utc_offset, name) AS z;
INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
    timezone, last_interaction_at, decayed_through, created_at)
SELECT gen_random_uuid(), g, 1 + g % 5, 80, 'completed',
       (SELECT name FROM zones WHERE i = g % (SELECT count(*) FROM zones)),
       now() - interval '5 days', now() - interval '1 hour', now() - interval '30 days'
FROM generate_series(1, $n) AS g;
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, event_details,
    recorded_at)
SELECT u.id, u.relationship_score, -0.2, u.chapter, 'decay', '{}', u.decayed_through
FROM nikita.users AS u;
SQL
        # That row is the day's decay row (sql/0022: the run updates it in place, as 23 of a
        # day's 24 runs do), unless DECAY_BENCH_FIRST_OF_DAY=1 (the day's first run: it
        # inserts the day's row).
        [ "${DECAY_BENCH_FIRST_OF_DAY:-0}" = 1 ] || "${psql_[@]}" -d "$url" -c "
            UPDATE nikita.score_history AS h
            SET decay_day = (h.recorded_at AT TIME ZONE u.timezone)::date
            FROM nikita.users AS u WHERE u.id = h.user_id"
    else
        # First run after a two-day silence: never decayed, last talk 2.5 days ago, in five
        # zones; every player decays over three or four local days (the whole days capped).
        "${psql_[@]}" -d "$url" <<SQL
INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
    timezone, last_interaction_at, created_at)
SELECT gen_random_uuid(), g, 1 + g % 5, 80, 'completed',
       (ARRAY['UTC', 'Asia/Tokyo', 'America/Los_Angeles', 'Europe/Berlin', 'Asia/Kolkata'])[1 + g % 5],
       now() - interval '60 hours' - interval '72 hours', now() - interval '30 days'
FROM generate_series(1, $n) AS g;
SQL
    fi
    "${psql_[@]}" -d "$url" -c "VACUUM ANALYZE nikita.users" -c "VACUUM ANALYZE nikita.score_history" -c "CHECKPOINT"
    echo "decay bench: $scenario, $n players: CALL nikita.run_job('decay')" >&2
    local t0 t1 wall line status duration decayed batches max_ms batch_size lsn0 lsn1 hist0 hist1
    IFS='|' read -r lsn0 hist0 <<<"$("${psql_[@]}" -d "$url" -tA -F'|' -c "SELECT pg_current_wal_lsn(), pg_total_relation_size('nikita.score_history')")"
    t0=$(date +%s.%N)
    "${psql_[@]}" -d "$url" -c "CALL nikita.run_job('decay')"
    t1=$(date +%s.%N)
    wall=$(echo "$t1 - $t0" | bc)
    IFS='|' read -r lsn1 hist1 <<<"$("${psql_[@]}" -d "$url" -tA -F'|' -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0'), pg_total_relation_size('nikita.score_history') - $hist0")"
    line=$("${psql_[@]}" -d "$url" -tA -F'|' -c "
        SELECT status, duration_ms, result ->> 'decayed', result ->> 'batches',
               result ->> 'max_batch_ms',
               (SELECT value FROM nikita.settings WHERE key = 'decay_batch_size')
        FROM nikita.job_executions WHERE job_name = 'decay' ORDER BY id DESC LIMIT 1")
    IFS='|' read -r status duration decayed batches max_ms batch_size <<<"$line"
    [ "$status" = completed ] || { echo "decay bench: the run $status" >&2; exit 1; }
    [ "$decayed" = "$n" ] || { echo "decay bench: decayed $decayed of $n" >&2; exit 1; }
    echo "decay bench: $scenario, $n players: ${duration} ms in $batches batches, longest ${max_ms} ms, WAL $lsn1 B, history +$hist1 B" >&2
    echo "$duration $wall $max_ms $batches $batch_size $lsn1 $hist1"
}

# line SCENARIO N: DECAY_BENCH_ROUNDS rounds, one result row (median, min–max, longest).
line() {
    local scenario=$1 n=$2 r out=()
    for ((r = 1; r <= rounds; r++)); do
        echo "decay bench: $scenario, $n players: round $r of $rounds" >&2
        out+=("$(run_one "$scenario" "$n")")
    done
    rows+=("$(printf '%s\n' "${out[@]}" | python3 -c '
import statistics, sys
scenario, n = sys.argv[1], int(sys.argv[2])
runs = [line.split() for line in sys.stdin if line.strip()]
d = [float(r[0]) / 1000 for r in runs]
w = [float(r[1]) for r in runs]
longest = max(float(r[2]) for r in runs)
wal = statistics.median(float(r[5]) for r in runs)
hist = statistics.median(float(r[6]) for r in runs)
print(f"| {scenario} | {n:,} | {runs[0][4]} | {runs[0][3]} | {statistics.median(d):.1f} s "
      f"({min(d):.1f}–{max(d):.1f}) | {statistics.median(w):.1f} s | {longest:.0f} ms | "
      f"{len(runs)} | {wal / 2**20:,.0f} MB ({wal / n:,.0f} B/player) | "
      f"{hist / 2**20:,.0f} MB ({hist / n:,.0f} B/player) |")
' "$scenario" "$n")")
}

for scenario in ${DECAY_BENCH_SCENARIOS:-hourly catch-up}; do
    for n in "${sizes[@]}"; do line "$scenario" "$n"; done
done

{
    echo "# Decay benchmark"
    echo
    echo "Command: \`DECAY_BENCH_FIRST_OF_DAY=${DECAY_BENCH_FIRST_OF_DAY:-0} bench/decay_bench.sh ${sizes[*]}\` ($(date -u +%Y-%m-%dT%H:%MZ))."
    echo
    echo "Machine: $(nproc) cores, PostgreSQL $(psql -X -tA -d "$url" -c 'SHOW server_version') (fsync $(psql -X -tA -d "$url" -c 'SHOW fsync'), synchronous_commit $(psql -X -tA -d "$url" -c 'SHOW synchronous_commit'), shared_buffers $(psql -X -tA -d "$url" -c 'SHOW shared_buffers'), max_wal_size $(psql -X -tA -d "$url" -c 'SHOW max_wal_size')). Load average before the runs $load_before, after $(cut -d' ' -f1-3 /proc/loadavg) (other sessions share the machine: the load is theirs and ours)."
    echo
    echo "The run is \`CALL nikita.run_job('decay')\` exactly as pg_cron sends it; every player"
    echo "decays (one update and one history row each), each batch its own transaction, all"
    echo "pinned to one p_now. *hourly*: the steady state, players idle for days and decayed"
    echo "through an hour ago (in zones where it is morning, so none has reached the day's cap)."
    echo "Its history row is the day's decay row (sql/0022), which the run updates in place, as"
    echo "23 of a day's 24 runs do; DECAY_BENCH_FIRST_OF_DAY=1 measures the day's first run"
    echo "(it inserts the day's row) instead."
    echo "*catch-up*: the first run after a two-day silence (three or four local days each)."
    echo "A CHECKPOINT precedes each run, as one will in production within the hour: every page"
    echo "the run touches is written to the WAL in full once."
    echo
    echo "Each line: $rounds rounds, each on a freshly built set; run = median (min–max) of"
    echo "run_job's duration_ms; longest transaction = the slowest batch of all rounds (run_job's"
    echo "max_batch_ms, its COMMIT not included); WAL = pg_current_wal_lsn difference over the"
    echo "CALL; history = growth of score_history, table and indexes (medians)."
    echo
    echo "| scenario | players | batch size | batches | run, median (min–max) | wall clock of the CALL, median | longest transaction | rounds | WAL per run | score_history growth per run |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Target (DESIGN.md): 1,000,000 players in ≤ 30 s, no transaction longer than 2 s."
} >"$results"
echo "decay bench: written to $results" >&2
