#!/usr/bin/env bash
# Daily summaries at scale: N players with a day of conversations and score history, then the
# summary job's function (and the job itself) timed. Figures for docs/scaling.md.
#
#   bench/summaries_bench.sh              # 100,000 players, writes bench/RESULTS-summaries.md
#   bench/summaries_bench.sh 20000        # another size
#   SUMMARIES_BENCH_SCENARIOS=midnight bench/summaries_bench.sh 1000000   # one scenario
#
# Uses its own database, nikita_bench_summaries, on DATABASE_URL's cluster (default: the
# embedded one), created fresh, migrated with scripts/migrate.sh and dropped at the end.
#
# The players' day D (their local yesterday), one in five of each kind:
#   quiet    no activity on D (an old history row only): scanned, no summary
#   talker   2 conversations on D, 2 'conversation' rows (+1.50), 4 hourly 'decay' rows
#   idle     15 hourly 'decay' rows (-0.80), as the per-run decay history writes them
# (2 of 5 talkers, 2 of 5 idle; every player also has one row three days before D, so the
# score-at-start look-up finds a row before the day.)
#
# Scenarios:
#   midnight  every player in UTC: one run closes everyone's D at once (the worst hour).
#             Timed twice: generate_daily_summaries(p_now pinned to 00:05 after D, '2 hours'),
#             then, after emptying daily_summaries, CALL nikita.run_job('summary') as pg_cron
#             sends it (real now(); no earlier run, so its lookback is 2 days and covers D).
#   spread    players over 24 fixed-offset zones (Etc/GMT+12 .. Etc/GMT-11): the steady
#             hourly run. A first run an hour earlier summarises the zones already past
#             midnight; the timed run at 00:05 UTC summarises one zone in 24 and scans the rest.
#   rerun     the same run again: nothing to insert (the cost of the scan alone).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
n=${1:-100000}
base=${DATABASE_URL:-$(scripts/db.sh up)}
db=nikita_bench_summaries
url=$(.venv/bin/python scripts/conninfo.py with-db "$base" "$db")
admin=$(.venv/bin/python scripts/conninfo.py with-db "$base" postgres)
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
results=${SUMMARIES_BENCH_RESULTS:-bench/RESULTS-summaries.md}
export PGTZ=UTC  # current_date and the pinned times below are UTC

drop_db() { "${psql_[@]}" -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
drop_db
trap drop_db EXIT
"${psql_[@]}" -d "$admin" -c "CREATE DATABASE $db"
DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh 2>/dev/null  # no pg_cron jobs

# setup ZONES: N players and their day D. ZONES=utc: all in UTC; ZONES=spread: 24 zones.
# D is the UTC date two days before today, so that every zone's D has ended by now().
setup() {
    "${psql_[@]}" -d "$url" -c "TRUNCATE nikita.users, nikita.job_executions CASCADE"
    "${psql_[@]}" -d "$url" -v n="$n" -v zones="$1" <<'SQL'
CREATE TEMP TABLE z AS
SELECT k - 12 AS i,
       CASE WHEN :'zones' = 'utc' OR k = 12 THEN 'UTC'
            WHEN k < 12 THEN 'Etc/GMT+' || (12 - k)   -- POSIX sign: GMT+5 is UTC-5
            ELSE 'Etc/GMT-' || (k - 12) END AS name
FROM generate_series(0, 23) AS k;
CREATE TEMP TABLE p AS
SELECT g, gen_random_uuid() AS id, g % 5 AS kind,
       (SELECT name FROM z WHERE i = g % 24 - 12) AS tz
FROM generate_series(1, :n) AS g;
ALTER TABLE p ADD COLUMN day_start timestamptz;
UPDATE p SET day_start = (current_date - 2)::timestamp AT TIME ZONE tz;

INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
    timezone, last_interaction_at, decayed_through, created_at)
SELECT id, g, 1 + g % 5, 60, 'completed', tz, day_start + interval '20 hours',
       day_start + interval '23 hours', day_start - interval '30 days'
FROM p;

-- Two conversations on D for talkers (kind 1, 2), processed.
INSERT INTO nikita.conversations (user_id, platform, status, started_at, last_message_at,
    ended_at, summary)
SELECT p.id, 'telegram', 'processed', p.day_start + h * interval '1 hour',
       p.day_start + h * interval '1 hour' + interval '10 minutes',
       p.day_start + h * interval '1 hour' + interval '10 minutes', 'talked'
FROM p CROSS JOIN (VALUES (10), (20)) AS t (h)
WHERE p.kind IN (1, 2);

-- History: a row three days before D (everyone); talkers: 4 decay rows, 2 conversation
-- rows; idle: 15 hourly decay rows.
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
SELECT p.id, 60, 0, 1, 'conversation', p.day_start - interval '3 days' FROM p;
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
SELECT p.id, 60 - 0.4 * h, -0.4, 1, 'decay', p.day_start + h * interval '1 hour'
FROM p CROSS JOIN generate_series(1, 4) AS h WHERE p.kind IN (1, 2);
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
SELECT p.id, 58.4 + 1.5 * t.k, 1.5, 1, 'conversation',
       p.day_start + t.h * interval '1 hour' + interval '15 minutes'
FROM p CROSS JOIN (VALUES (1, 10), (2, 20)) AS t (k, h) WHERE p.kind IN (1, 2);
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
SELECT p.id, 60 - 0.8 * h, -0.8, 1, 'decay', p.day_start + h * interval '1 hour'
FROM p CROSS JOIN generate_series(1, 15) AS h WHERE p.kind IN (3, 4);
SQL
    "${psql_[@]}" -d "$url" -c "VACUUM ANALYZE nikita.users" \
        -c "VACUUM ANALYZE nikita.score_history" -c "VACUUM ANALYZE nikita.conversations" \
        -c "VACUUM ANALYZE nikita.daily_summaries" -c "CHECKPOINT"
}

q() { psql -X -tA --no-psqlrc -v ON_ERROR_STOP=1 -d "$url" -c "$1"; }

rows=()
# timed LABEL SQL: run SQL (one statement), add a row: summaries inserted, seconds, per second,
# WAL bytes, load average.
timed() {
    local label=$1 sql=$2 before after lsn0 lsn1 t0 t1 secs made wal load
    before=$(q "SELECT count(*) FROM nikita.daily_summaries")
    lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    "${psql_[@]}" -d "$url" -c "$sql" >/dev/null
    t1=$(date +%s.%N)
    lsn1=$(q "SELECT pg_current_wal_insert_lsn()")
    after=$(q "SELECT count(*) FROM nikita.daily_summaries")
    wal=$(q "SELECT pg_size_pretty(pg_wal_lsn_diff('$lsn1', '$lsn0'))")
    secs=$(echo "$t1 - $t0" | bc -l)
    made=$((after - before))
    echo "summaries bench: $label: $made summaries in $(printf '%.2f' "$secs") s" >&2
    rows+=("| $label | $n | $made | $(printf '%.2f' "$secs") s | $(echo "$made / $secs" | bc) | $(echo "$n / $secs" | bc) | $wal | $load |")
}

scenarios=" ${SUMMARIES_BENCH_SCENARIOS:-midnight spread} "
midnight="((current_date - 1)::timestamp AT TIME ZONE 'UTC') + interval '5 minutes'"
hist=0
convs=0
job="not run"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $scenarios == *" midnight "* ]]; then
echo "summaries bench: midnight, $n players in UTC: setting up" >&2
setup utc
hist=$(q "SELECT count(*) FROM nikita.score_history")
convs=$(q "SELECT count(*) FROM nikita.conversations")
timed "midnight: generate_daily_summaries(00:05 after D, '2 hours')" \
    "SELECT nikita.generate_daily_summaries($midnight, interval '2 hours')"
"${psql_[@]}" -d "$url" -c "TRUNCATE nikita.daily_summaries" -c "VACUUM ANALYZE nikita.daily_summaries"
timed "midnight: CALL nikita.run_job('summary') (lookback 2 days)" "CALL nikita.run_job('summary')"
job=$(q "SELECT status || ', duration_ms ' || duration_ms || ', ' || result::text
         FROM nikita.job_executions WHERE job_name = 'summary' ORDER BY id DESC LIMIT 1")
expected=$(q "SELECT count(*) FROM nikita.users AS u WHERE EXISTS (
    SELECT 1 FROM nikita.score_history AS h WHERE h.user_id = u.id
    AND h.recorded_at >= (current_date - 2)::timestamp AT TIME ZONE 'UTC'
    AND h.recorded_at < (current_date - 1)::timestamp AT TIME ZONE 'UTC')")
made=$(q "SELECT count(*) FROM nikita.daily_summaries")
[ "$made" = "$expected" ] || { echo "summaries bench: $made summaries, expected $expected" >&2; exit 1; }
fi

if [[ $scenarios == *" spread "* ]]; then
echo "summaries bench: spread, $n players over 24 zones: setting up" >&2
setup spread
"${psql_[@]}" -d "$url" -c "SELECT nikita.generate_daily_summaries($midnight - interval '1 hour', interval '25 hours')" >/dev/null
"${psql_[@]}" -d "$url" -c "VACUUM ANALYZE nikita.daily_summaries"
timed "spread: the hourly run at 00:05 UTC ('2 hours')" \
    "SELECT nikita.generate_daily_summaries($midnight, interval '2 hours')"
timed "rerun: the same run again (nothing new)" \
    "SELECT nikita.generate_daily_summaries($midnight, interval '2 hours')"
[ "$hist" != 0 ] || hist=$(q "SELECT count(*) FROM nikita.score_history")
[ "$convs" != 0 ] || convs=$(q "SELECT count(*) FROM nikita.conversations")
fi

{
    echo "# Daily summaries benchmark"
    echo
    echo "Command: \`SUMMARIES_BENCH_SCENARIOS='$(echo $scenarios)' bench/summaries_bench.sh $n\` ($(date -u +%Y-%m-%dT%H:%MZ))."
    echo
    echo "Machine: $(nproc) cores, PostgreSQL $(q 'SHOW server_version') (fsync $(q 'SHOW fsync'), synchronous_commit $(q 'SHOW synchronous_commit'), shared_buffers $(q 'SHOW shared_buffers')). Load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); the last column is the 1-minute load when each step started (other sessions share the machine)."
    echo
    echo "Data: $n players, $hist score_history rows and $convs conversations (midnight"
    echo "set-up): per player a day D with 0 (1 in 5), 8 (2 in 5) or 16 (2 in 5) history rows and 2"
    echo "conversations for 2 in 5. The job's last run of the midnight case: $job."
    echo
    echo "| step | players | summaries written | seconds | summaries/s | players scanned/s | WAL | load (1 min) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >"$results"
echo "summaries bench: written to $results" >&2
