#!/usr/bin/env bash
# Decay at scale beside the app (`make bench-scale`; not part of `make bench`).
#
#   bench/scale_bench.sh                         # 10,000,000 players, writes bench/SCALE-RESULTS.md
#   PLAYERS=200000 BASELINE=20 bench/scale_bench.sh   # a smoke run
#
# Settings (environment): PLAYERS (10000000), WRITERS (4 sessions), RATE (messages/s per
# writer, 50), BASELINE (seconds of writes before decay starts, 60), SCALE_RESULTS (output
# file, bench/SCALE-RESULTS.md), KEEP=1 keeps the database afterwards.
#
# Its own database, nikita_bench_scale, on DATABASE_URL's cluster (default: the embedded one),
# created fresh, migrated, dropped at the end. Players are built by one INSERT ... SELECT over
# generate_series (logged tables, as in production) with a spread of chapters, scores, states,
# time zones and last interactions; the players that decayed an hour ago get that run's
# score_history row. Then bench/scale_bench_writers.py: WRITERS sessions write players as the
# game does per message, first alone (BASELINE s), then while `CALL nikita.run_job('decay')`
# runs as pg_cron sends it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
players=${PLAYERS:-10000000}
writers=${WRITERS:-4}
rate=${RATE:-50}
baseline=${BASELINE:-60}
results=${SCALE_RESULTS:-bench/SCALE-RESULTS.md}
base=${DATABASE_URL:-$(scripts/db.sh up)}
db=nikita_bench_scale
url=$(.venv/bin/python scripts/conninfo.py with-db "$base" "$db")
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
say() { printf 'scale bench: %s\n' "$*" >&2; }

# About 2.5 KB per player at most (players at fillfactor 50, indexes, history before and after
# the run) plus 10 GB of WAL headroom; the data directory's file system must have it.
datadir=$("${psql_[@]}" -d "$base" -tA -c "SHOW data_directory")
need_kb=$((players * 5 / 2 + 10 * 1024 * 1024))
free_kb=$(df -Pk "$datadir" | awk 'NR == 2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
    say "needs about $((need_kb / 1024 / 1024)) GB free in $datadir, has $((free_kb / 1024 / 1024)) GB (PLAYERS=$players)"
    exit 1
fi
say "$players players; $((free_kb / 1024 / 1024)) GB free, needs about $((need_kb / 1024 / 1024)) GB"

"${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
[ "${KEEP:-0}" = 1 ] \
    || trap '"${psql_[@]}" -d "$base" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh 2>/dev/null  # no pg_cron jobs

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "building $players players"
t0=$(date +%s.%N)
"${psql_[@]}" -d "$url" <<SQL
SELECT setseed(0.42);
-- Chapters 1..5 (30/25/20/15/10 %), 88 % active, 10 % game over, 2 % won, 97 % onboarded,
-- scores 20..96, twelve time zones, last interaction uniformly over the last four days. A
-- player idle past the chapter's grace for over an hour was decayed by the previous hourly
-- run, an hour ago.
INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, game_status,
    onboarding_status, timezone, last_interaction_at, decayed_through, created_at)
SELECT gen_random_uuid(), g, p.chapter, p.score, p.status, p.onboarding, p.tz, p.li,
       CASE WHEN p.li < now() - r.grace - interval '1 hour' AND p.status = 'active'
            THEN now() - interval '1 hour' END,
       p.li - interval '30 days'
FROM generate_series(1, $players) AS g
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN x.c < 0.30 THEN 1 WHEN x.c < 0.55 THEN 2 WHEN x.c < 0.75 THEN 3
             WHEN x.c < 0.90 THEN 4 ELSE 5 END::smallint AS chapter,
        round((20 + random() * 76)::numeric, 2) AS score,
        CASE WHEN x.s < 0.88 THEN 'active' WHEN x.s < 0.98 THEN 'game_over' ELSE 'won' END
            AS status,
        CASE WHEN random() < 0.97 THEN 'completed' ELSE 'pending' END AS onboarding,
        (ARRAY['UTC', 'Europe/London', 'Europe/Berlin', 'Europe/Moscow', 'Asia/Kolkata',
               'Asia/Shanghai', 'Asia/Tokyo', 'Australia/Sydney', 'America/Sao_Paulo',
               'America/New_York', 'America/Chicago', 'America/Los_Angeles'])[1 + (g % 12)]
            AS tz,
        now() - random() * interval '96 hours' AS li
    FROM (SELECT random() AS c, random() AS s, g AS g0) AS x
) AS p
INNER JOIN nikita.decay_rules AS r ON r.chapter = p.chapter;
-- The previous hourly run's history row of each player it decayed.
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, event_details,
    recorded_at)
SELECT u.id, u.relationship_score, -0.4, u.chapter, 'decay',
       jsonb_build_object('last_day', (u.decayed_through AT TIME ZONE u.timezone)::date,
                          'last_day_total', 0.4),
       u.decayed_through
FROM nikita.users AS u
WHERE u.decayed_through IS NOT NULL;
SQL
t1=$(date +%s.%N)
"${psql_[@]}" -d "$url" -c "VACUUM ANALYZE nikita.users" -c "VACUUM ANALYZE nikita.score_history" -c "CHECKPOINT"
t2=$(date +%s.%N)
build=$(printf '%.0f' "$(echo "$t1 - $t0" | bc)")
vacuum=$(printf '%.0f' "$(echo "$t2 - $t1" | bc)")
sizes=$("${psql_[@]}" -d "$url" -tA -c "
    SELECT format('users %s, score_history %s (tables + indexes)',
                  pg_size_pretty(pg_total_relation_size('nikita.users')),
                  pg_size_pretty(pg_total_relation_size('nikita.score_history')))")
say "built in ${build} s, VACUUM ANALYZE + CHECKPOINT ${vacuum} s; $sizes"

load_mid=$(cut -d' ' -f1-3 /proc/loadavg)
section=$(.venv/bin/python bench/scale_bench_writers.py --url "$url" --players "$players" \
    --writers "$writers" --rate "$rate" --baseline "$baseline")
{
    echo "## Decay at scale beside the app (bench/scale_bench.sh)"
    echo
    echo "Command: \`PLAYERS=$players WRITERS=$writers RATE=$rate BASELINE=$baseline bench/scale_bench.sh\` ($(date -u +%Y-%m-%dT%H:%MZ))."
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, PostgreSQL $(psql -X -tA -d "$url" -c 'SHOW server_version') (fsync $(psql -X -tA -d "$url" -c 'SHOW fsync'), synchronous_commit $(psql -X -tA -d "$url" -c 'SHOW synchronous_commit'), shared_buffers $(psql -X -tA -d "$url" -c 'SHOW shared_buffers'), max_wal_size $(psql -X -tA -d "$url" -c 'SHOW max_wal_size')). Load average before the build $load_before, before the writers $load_mid, at the end $(cut -d' ' -f1-3 /proc/loadavg) (a machine shared with other sessions' benchmarks)."
    echo
    echo "Set-up: $players players by one INSERT ... SELECT generate_series (logged tables) and the previous run's history rows in ${build} s, then VACUUM ANALYZE and CHECKPOINT in ${vacuum} s; $sizes."
    echo
    echo "$section"
    echo
    echo "Targets (DESIGN.md): decay over 10,000,000 players ≤ 5 minutes; app write p99 ≤ 10 ms during decay; no deadlock or serialization failure."
} >"$results"
cat "$results"
say "written to $results"
