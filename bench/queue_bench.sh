#!/usr/bin/env bash
# Event queue benchmark, SQL alone: scheduling cost and claim+complete throughput on 100,000 due
# events at batch sizes 50/100/500. Creates and drops its own database (nikita_bench_queue) on
# the embedded cluster (or on DATABASE_URL's cluster) and writes bench/RESULTS-queue.md.
#
#   bench/queue_bench.sh            # defaults: 100,000 events over 10,000 players
#   EVENTS=20000 bench/queue_bench.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
EVENTS=${EVENTS:-100000}
USERS=${USERS:-10000}
SCHEDULE_SINGLE=${SCHEDULE_SINGLE:-2000}
SCHEDULE_BULK=${SCHEDULE_BULK:-20000}
DB=nikita_bench_queue
OUT=${OUT:-bench/RESULTS-queue.md}

base=${DATABASE_URL:-$(scripts/db.sh up)}
other_db() {
    .venv/bin/python scripts/conninfo.py with-db "$base" "$1"
}
admin=$(other_db postgres)
url=$(other_db "$DB")
psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -d "$admin")

cleanup() { "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
"${psql_admin[@]}" -c "CREATE DATABASE $DB"
DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh 2>/dev/null  # no pg_cron jobs

log=$(mktemp)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
psql -X -v ON_ERROR_STOP=1 -d "$url" \
    -v events="$EVENTS" -v users="$USERS" \
    -v schedule_single="$SCHEDULE_SINGLE" -v schedule_bulk="$SCHEDULE_BULK" \
    -f bench/queue_bench.sql 2>"$log"
elapsed=$(($(date +%s) - start))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

results=$(psql -X -At -F ' | ' -d "$url" -c "
    SELECT '| ' || name, n, seconds::numeric(10, 3), coalesce(per_second::text, '-'),
           us_each || ' |'
    FROM bench.results ORDER BY step")
drained=$(psql -X -At -d "$url" -c "SELECT n FROM bench.left_over")
# The claim statement's plan, from auto_explain's LOG (stderr): the block with LockRows, from
# its top plan node on.
plan=$(awk '/LOG:  duration/ {if (keep) exit; buf=""; next} {buf = buf $0 "\n"} /LockRows/ {keep=1}
            END {if (keep) printf "%s", buf}' "$log" | sed -n '/^[A-Z][A-Za-z ]*  (cost=/,$p')
pg=$(psql -X -At -d "$url" -c "SHOW server_version")
cpu=$(nproc)

cat >"$OUT" <<EOF
# Event queue benchmark

Command (from the repository root):

\`\`\`sh
bench/queue_bench.sh   # EVENTS=$EVENTS USERS=$USERS SCHEDULE_SINGLE=$SCHEDULE_SINGLE SCHEDULE_BULK=$SCHEDULE_BULK
\`\`\`

It creates the database \`$DB\` on the embedded cluster (\`scripts/db.sh up\`), migrates it with
\`scripts/migrate.sh\`, runs \`bench/queue_bench.sql\` with psql and drops the database. SQL
alone: every claim and every batch completion is its own transaction (a procedure that
COMMITs), as the shim does with a no-op transport; no network round trip is counted.
PostgreSQL $pg, $cpu cores, fsync on, synchronous_commit on. Run took ${elapsed} s. Load
average before/after: $load_before / $load_after (other processes share the cores: small batches,
whose cost is mostly per call, vary most between runs).
Measured $(date -u +%Y-%m-%d).

| step | events | seconds | events/s | µs each |
|---|---:|---:|---:|---:|
$results

- Drain: $EVENTS due events over $USERS players ($((EVENTS / USERS)) each), oldest first, at
  most one in flight per player; events left undelivered afterwards: $drained.
- Scheduling "one call per transaction" includes the commit (WAL flush) of each call; "calls in
  one statement" is the function's own cost (validation, recipient look-up, dedupe-safe insert,
  one NOTIFY per call); the bulk INSERT is the table path with the statement trigger.

## Plan of the claim statement (auto_explain, $EVENTS due events queued, batch 100)

\`\`\`
$plan
\`\`\`
EOF
rm -f "$log"
echo "bench: wrote $OUT (${elapsed} s)"
