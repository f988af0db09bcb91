#!/usr/bin/env bash
# score_history at a few million rows: one table (as the package has it) against monthly
# partitions made by pg_partman. Figures for docs/scaling.md ("Retention and partitioning").
#
#   bench/partition_bench.sh                      # 6 months x 500,000 rows, 100,000 players
#   MONTHS=4 ROWS_PER_MONTH=250000 bench/partition_bench.sh
#
# Needs pg_partman (Debian: postgresql-15-partman). When its files are missing and this runs
# as root, it installs the package with apt-get (say so in the results); otherwise it stops
# and names the package.
#
# Scratch database nikita_bench_partition on DATABASE_URL's cluster (default: the embedded
# one), created fresh, migrated with scripts/migrate.sh (so the copies are made from the
# package's own table: LIKE nikita.score_history), dropped at the end. The package's tables
# are never written: the copies live in schema bench.
#   bench.players      100,000 players (the foreign key's target, as nikita.users)
#   bench.sh_plain     LIKE nikita.score_history INCLUDING ALL + the foreign key: one table
#   bench.sh_part      the same columns, PARTITION BY RANGE (recorded_at), monthly partitions
#                      by partman.create_parent; primary key (id, recorded_at) (a partitioned
#                      table's unique keys must hold the partition key)
# Steps, each measured on both (time; WAL bytes from pg_current_wal_insert_lsn; each after a
# CHECKPOINT so both pay their full-page writes):
#   insert   the same rows into each, in time order, 20,000 rows per INSERT, each committed
#            (the hourly decay's batch), alternating table by table month by month
#   lookups  20,000 per-player reads of the summary job: the last row before an instant (no
#            pruning: every partition's index is probed) and the rows of one day (pruned)
#   retire   the oldest month: the cleanup job's batched DELETE (cleanup_batch_size 10,000,
#            repeated until done) + the VACUUM that reclaims it, against pg_partman's
#            retention (drop_partition_time, run_maintenance's retention step: the partition
#            is dropped), and DETACH + DROP by hand
#   events   for comparison, the cleanup job's retention of scheduled_events on a copy of that
#            table: EVENT_ROWS settled events over 60 days, the older half deleted (0: skip)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
MONTHS=${MONTHS:-6}
ROWS_PER_MONTH=${ROWS_PER_MONTH:-500000}
PLAYERS=${PLAYERS:-100000}
BATCH=${BATCH:-20000}
LOOKUPS=${LOOKUPS:-20000}
EVENT_ROWS=${EVENT_ROWS:-1000000}
results=${PARTITION_BENCH_RESULTS:-bench/RESULTS-partition.md}
export PGTZ=UTC

sharedir=$(pg_config --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
[ -f /usr/lib/postgresql/15/bin/pg_config ] && sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
installed="already installed"
if ! ls "$sharedir"/extension/pg_partman.control >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "partition bench: pg_partman missing: apt-get install -y postgresql-15-partman (as root)" >&2
        exit 2
    fi
    echo "partition bench: installing postgresql-15-partman with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        postgresql-15-partman >&2 \
        || { apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 \
             && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install \
                -y -qq postgresql-15-partman >&2; }
    installed="installed by this run (apt-get install postgresql-15-partman)"
fi
partman_pkg=$(dpkg-query -W -f='${Version}' postgresql-15-partman 2>/dev/null || echo '?')

base=${DATABASE_URL:-$(scripts/db.sh up)}
db=nikita_bench_partition
url=$(.venv/bin/python scripts/conninfo.py with-db "$base" "$db")
admin=$(.venv/bin/python scripts/conninfo.py with-db "$base" postgres)
psql_=(psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc)
q() { psql -X -tA --no-psqlrc -v ON_ERROR_STOP=1 -d "$url" -c "$1"; }

drop_db() { "${psql_[@]}" -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
drop_db
trap drop_db EXIT
"${psql_[@]}" -d "$admin" -c "CREATE DATABASE $db"
DATABASE_URL="$url" NIKITA_CRON_FIND=no scripts/migrate.sh 2>/dev/null  # no pg_cron jobs

# The first month of data: MONTHS months ending with the current one.
first_month=$(q "SELECT to_char(date_trunc('month', now()) - interval '$((MONTHS - 1)) months', 'YYYY-MM-DD')")

"${psql_[@]}" -d "$url" -v players="$PLAYERS" -v first="$first_month" >/dev/null <<'SQL'
CREATE SCHEMA bench;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;

CREATE TABLE bench.players (n integer PRIMARY KEY, id uuid NOT NULL UNIQUE);
INSERT INTO bench.players SELECT g, gen_random_uuid() FROM generate_series(0, :players - 1) AS g;

CREATE TABLE bench.sh_plain (LIKE nikita.score_history INCLUDING ALL);
ALTER TABLE bench.sh_plain ADD FOREIGN KEY (user_id) REFERENCES bench.players (id)
    ON DELETE CASCADE;

-- Same columns, defaults, CHECKs and identity; keys and indexes declared on the parent.
CREATE TABLE bench.sh_part (LIKE nikita.score_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS
    INCLUDING IDENTITY) PARTITION BY RANGE (recorded_at);
ALTER TABLE bench.sh_part ADD PRIMARY KEY (id, recorded_at);
CREATE INDEX ON bench.sh_part (user_id, recorded_at);
ALTER TABLE bench.sh_part ADD FOREIGN KEY (user_id) REFERENCES bench.players (id)
    ON DELETE CASCADE;
SELECT partman.create_parent(
    p_parent_table => 'bench.sh_part', p_control => 'recorded_at', p_type => 'native',
    p_interval => 'monthly', p_premake => 2, p_start_partition => :'first'
);

-- fill(table, month index, rows): that month's rows in time order, BATCH rows per committed
-- INSERT; the same rows for either table (row g of the month: player g % players, time g/rows
-- of the month). Returns nothing: run_log has the time.
CREATE TABLE bench.run_log (step text, tbl text, seconds double precision, wal bigint,
    n bigint, seq bigint GENERATED ALWAYS AS IDENTITY);
CREATE PROCEDURE bench.fill(p_tbl text, p_month integer, p_rows integer, p_batch integer,
    p_first date)
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz := p_first + p_month * interval '1 month';
    v_len interval := (p_first + (p_month + 1) * interval '1 month') - v_start;
    v_t0 timestamptz;
    v_lsn pg_lsn := pg_current_wal_insert_lsn();
    v_spent double precision := 0;
    v_b integer := 0;
BEGIN
    WHILE v_b < p_rows LOOP
        v_t0 := clock_timestamp();
        EXECUTE format($i$
            INSERT INTO bench.%I (user_id, score, delta, chapter, event_type, event_details,
                recorded_at)
            SELECT p.id, 50 - (g %% 40), -0.4, 1 + g %% 5, 'decay',
                   '{"hours": 1.0}', $1 + $2 * (g::double precision / $3)
            FROM generate_series($4, $5) AS g
            JOIN bench.players AS p ON p.n = g %% (SELECT count(*) FROM bench.players)
        $i$, p_tbl) USING v_start, v_len, p_rows, v_b, least(v_b + p_batch, p_rows) - 1;
        COMMIT;
        v_spent := v_spent + extract(epoch FROM clock_timestamp() - v_t0);
        v_b := v_b + p_batch;
    END LOOP;
    INSERT INTO bench.run_log VALUES ('insert', p_tbl, v_spent,
        pg_wal_lsn_diff(pg_current_wal_insert_lsn(), v_lsn), p_rows);
    COMMIT;
END
$$;
SQL

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
loads=()
note_load() { loads+=("$1: $(cut -d' ' -f1 /proc/loadavg)"); }

# insert: month by month, the two tables alternating (which goes first alternates too).
note_load insert
for ((m = 0; m < MONTHS; m++)); do
    if ((m % 2 == 0)); then order=(sh_plain sh_part); else order=(sh_part sh_plain); fi
    for t in "${order[@]}"; do
        "${psql_[@]}" -d "$url" -c "CHECKPOINT" \
            -c "CALL bench.fill('$t', $m, $ROWS_PER_MONTH, $BATCH, '$first_month')"
    done
    echo "partition bench: month $((m + 1)) of $MONTHS inserted" >&2
done
"${psql_[@]}" -d "$url" -c "VACUUM ANALYZE bench.sh_plain" -c "VACUUM ANALYZE bench.sh_part"
total=$(q "SELECT count(*) FROM bench.sh_plain")
[ "$total" = "$(q "SELECT count(*) FROM bench.sh_part")" ] || { echo "partition bench: row counts differ" >&2; exit 1; }
parts=$(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'bench.sh_part'::regclass")
size_plain=$(q "SELECT pg_size_pretty(pg_total_relation_size('bench.sh_plain'))")
size_part=$(q "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'bench.sh_part'::regclass")

# lookups: the summary job's two per-player reads, LOOKUPS players, three rounds alternating.
"${psql_[@]}" -d "$url" -v lookups="$LOOKUPS" <<'SQL'
CREATE FUNCTION bench.lookups(p_tbl text, p_kind text, p_n integer, p_at timestamptz)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_t0 timestamptz := clock_timestamp();
    v_sql text;
    v_x numeric;
BEGIN
    IF p_kind = 'last_before' THEN
        v_sql := format($q$
            SELECT sum(x.score) FROM (SELECT id FROM bench.players ORDER BY hashint4(n)
                                      LIMIT $1) AS p
            CROSS JOIN LATERAL (
                SELECT b.score FROM bench.%I AS b
                WHERE b.user_id = p.id AND b.recorded_at < $2
                ORDER BY b.recorded_at DESC, b.id DESC LIMIT 1) AS x$q$, p_tbl);
    ELSE
        v_sql := format($q$
            SELECT sum(x.s) FROM (SELECT id FROM bench.players ORDER BY hashint4(n)
                                  LIMIT $1) AS p
            CROSS JOIN LATERAL (
                SELECT sum(b.delta) AS s FROM bench.%I AS b
                WHERE b.user_id = p.id AND b.recorded_at >= $2
                  AND b.recorded_at < $2 + interval '1 day') AS x$q$, p_tbl);
    END IF;
    EXECUTE v_sql INTO v_x USING p_n, p_at;
    RETURN extract(epoch FROM clock_timestamp() - v_t0);
END
$$;
SQL
note_load lookups
# The instant: the middle of the last full month (so the day read is in one partition and the
# last-before read has every older partition below it).
at=$(q "SELECT date_trunc('month', now()) - interval '15 days'")
for round in 1 2 3; do
    for kind in last_before one_day; do
        if ((round % 2)); then order=(sh_plain sh_part); else order=(sh_part sh_plain); fi
        for t in "${order[@]}"; do
            q "INSERT INTO bench.run_log SELECT 'lookup $kind', '$t',
                   bench.lookups('$t', '$kind', $LOOKUPS, '$at'), 0, $LOOKUPS" >/dev/null
        done
    done
done
plan_part=$(q "EXPLAIN (COSTS OFF) SELECT b.score FROM bench.sh_part AS b
    WHERE b.user_id = (SELECT id FROM bench.players WHERE n = 7) AND b.recorded_at < '$at'
    ORDER BY b.recorded_at DESC, b.id DESC LIMIT 1")

# retire the oldest month.
cutoff=$(q "SELECT ('$first_month'::date + interval '1 month')::timestamptz")
month_rows=$(q "SELECT count(*) FROM bench.sh_plain WHERE recorded_at < '$cutoff'")
note_load retire
"${psql_[@]}" -d "$url" -c "CHECKPOINT"
"${psql_[@]}" -d "$url" -v cutoff="$cutoff" <<'SQL'
-- The cleanup job's form (functions/cleanup.sql): DELETE ... WHERE id IN (SELECT ... LIMIT
-- batch), repeated until a batch comes back short; each statement committed.
CREATE PROCEDURE bench.batched_delete(p_cutoff timestamptz, p_batch integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_t0 timestamptz := clock_timestamp();
    v_lsn pg_lsn := pg_current_wal_insert_lsn();
    v_n bigint;
    v_all bigint := 0;
BEGIN
    LOOP
        DELETE FROM bench.sh_plain AS e WHERE e.id IN (
            SELECT x.id FROM bench.sh_plain AS x WHERE x.recorded_at < p_cutoff LIMIT p_batch);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_all := v_all + v_n;
        COMMIT;
        EXIT WHEN v_n < p_batch;
    END LOOP;
    INSERT INTO bench.run_log VALUES ('delete (batched, cleanup form)', 'sh_plain',
        extract(epoch FROM clock_timestamp() - v_t0),
        pg_wal_lsn_diff(pg_current_wal_insert_lsn(), v_lsn), v_all);
    COMMIT;
END
$$;
CALL bench.batched_delete(:'cutoff', 10000);
SQL
# The VACUUM that makes the deleted month's space reusable (autovacuum would do it later;
# timed here because it is part of what a DELETE costs).
lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
t0=$(date +%s.%N)
"${psql_[@]}" -d "$url" -c "VACUUM bench.sh_plain"
t1=$(date +%s.%N)
q "INSERT INTO bench.run_log VALUES ('vacuum after the delete', 'sh_plain', $t1 - $t0,
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0'), 0)" >/dev/null

# pg_partman's retention: everything older than the cutoff's month goes (dropped).
"${psql_[@]}" -d "$url" -c "CHECKPOINT"
lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
t0=$(date +%s.%N)
# (drop_partition_time is run_maintenance's retention step: a partition goes when its upper
# bound is older than now() - retention; this retention reaches just past the oldest month.)
"${psql_[@]}" -d "$url" -o /dev/null -c "SELECT partman.drop_partition_time('bench.sh_part',
    p_retention => now() - '$cutoff'::timestamptz - interval '1 day', p_keep_table => false)"
t1=$(date +%s.%N)
left=$(q "SELECT count(*) FROM bench.sh_part WHERE recorded_at < '$cutoff'")
q "INSERT INTO bench.run_log VALUES ('drop (pg_partman retention: drop_partition_time)', 'sh_part',
       $t1 - $t0, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0'), $month_rows - $left)" >/dev/null
[ "$left" = 0 ] || echo "partition bench: partman left $left rows before the cutoff" >&2

# By hand: the next month, DETACH then DROP. (DETACH ... CONCURRENTLY, which spares the
# parent the ACCESS EXCLUSIVE lock, is refused while a default partition exists, and
# pg_partman makes one.)
next=$(q "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'bench.sh_part'::regclass AND c.relname NOT LIKE '%default'
          ORDER BY c.relname LIMIT 1")
next_rows=$(q "SELECT count(*) FROM bench.$next")
"${psql_[@]}" -d "$url" -c "CHECKPOINT"
lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
t0=$(date +%s.%N)
"${psql_[@]}" -d "$url" -c "ALTER TABLE bench.sh_part DETACH PARTITION bench.$next" \
    -c "DROP TABLE bench.$next"
t1=$(date +%s.%N)
q "INSERT INTO bench.run_log VALUES ('detach + drop (by hand)', 'sh_part',
       $t1 - $t0, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0'), $next_rows)" >/dev/null

# scheduled_events for comparison: the cleanup job's own retention (event_retention, 30 days)
# on a copy (LIKE nikita.scheduled_events INCLUDING ALL: same columns, checks and all nine
# indexes; random uuid keys as schedule_event makes them). EVENT_ROWS delivered events settled
# over 60 days in time order; the cleanup form deletes the older half, then VACUUM.
if ((EVENT_ROWS > 0)); then
    echo "partition bench: scheduled_events copy, $EVENT_ROWS settled events" >&2
    "${psql_[@]}" -d "$url" -v rows="$EVENT_ROWS" <<'SQL'
CREATE TABLE bench.events (LIKE nikita.scheduled_events INCLUDING ALL);
ALTER TABLE bench.events ADD FOREIGN KEY (user_id) REFERENCES bench.players (id)
    ON DELETE CASCADE;
INSERT INTO bench.events (user_id, platform, event_type, content, scheduled_at, status,
    attempts, delivered_at, provider_ref, created_at, updated_at)
SELECT p.id, 'telegram', 'message_delivery',
       jsonb_build_object('chat_id', 1000 + g % 100000, 'text',
           'A reply of about the length the game sends, a sentence or two long. ' || g),
       t, 'delivered', 1, t + interval '2 seconds', (g * 7)::text, t - interval '1 minute',
       t + interval '2 seconds'
FROM generate_series(0, :rows - 1) AS g
JOIN bench.players AS p ON p.n = g % (SELECT count(*) FROM bench.players)
CROSS JOIN LATERAL (SELECT now() - interval '60 days' + (g::double precision / :rows)
                               * interval '60 days' AS t) AS x;
VACUUM ANALYZE bench.events;
CREATE PROCEDURE bench.events_delete(p_cutoff timestamptz, p_batch integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_t0 timestamptz := clock_timestamp();
    v_lsn pg_lsn := pg_current_wal_insert_lsn();
    v_n bigint;
    v_all bigint := 0;
BEGIN
    LOOP
        DELETE FROM bench.events AS e WHERE e.id IN (
            SELECT x.id FROM bench.events AS x
            WHERE x.status IN ('delivered', 'cancelled') AND x.updated_at < p_cutoff
            LIMIT p_batch);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_all := v_all + v_n;
        COMMIT;
        EXIT WHEN v_n < p_batch;
    END LOOP;
    INSERT INTO bench.run_log VALUES ('delete (batched, cleanup form)', 'events (copy)',
        extract(epoch FROM clock_timestamp() - v_t0),
        pg_wal_lsn_diff(pg_current_wal_insert_lsn(), v_lsn), v_all);
    COMMIT;
END
$$;
SQL
    events_size=$(q "SELECT pg_size_pretty(pg_total_relation_size('bench.events'))")
    note_load events
    "${psql_[@]}" -d "$url" -c "CHECKPOINT" -c "CALL bench.events_delete(now() - interval '30 days', 10000)"
    lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
    t0=$(date +%s.%N)
    "${psql_[@]}" -d "$url" -c "VACUUM bench.events"
    t1=$(date +%s.%N)
    q "INSERT INTO bench.run_log VALUES ('vacuum after the delete', 'events (copy)', $t1 - $t0,
           pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0'), 0)" >/dev/null
fi

table=$(q "SELECT '| ' || step || ' | ' || tbl || ' | ' || count(*) || ' | '
        || to_char(sum(n) / count(*), 'FM999,999,999') || ' | '
        || CASE WHEN count(*) = 1 THEN round(min(seconds)::numeric, 3)::text
                ELSE round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds))::numeric, 3)
                     || ' (' || round(min(seconds)::numeric, 3) || '–'
                     || round(max(seconds)::numeric, 3) || ')' END
        || ' | ' || CASE WHEN sum(n) > 0 AND step NOT LIKE 'lookup%'
                         THEN round(sum(seconds)::numeric * 1e6 / sum(n), 2)::text
                         WHEN step LIKE 'lookup%'
                         THEN round(sum(seconds)::numeric * 1e6 / sum(n), 2)::text
                         ELSE '-' END
        || ' | ' || CASE WHEN sum(wal) > 0 THEN pg_size_pretty(sum(wal)::bigint) ELSE '-' END
        || ' |'
    FROM bench.run_log GROUP BY step, tbl
    ORDER BY min(seq), tbl")
insert_sum=$(q "SELECT tbl || ' ' || round(sum(seconds)::numeric, 1) || ' s, '
        || round(sum(n) / sum(seconds))::text || ' rows/s, WAL '
        || pg_size_pretty(sum(wal)::bigint)
    FROM bench.run_log WHERE step = 'insert' GROUP BY tbl ORDER BY tbl")

{
    echo "# Partitioning benchmark (score_history; scheduled_events retention)"
    echo
    echo "Command: \`MONTHS=$MONTHS ROWS_PER_MONTH=$ROWS_PER_MONTH PLAYERS=$PLAYERS EVENT_ROWS=$EVENT_ROWS bench/partition_bench.sh\` ($(date -u +%Y-%m-%dT%H:%MZ))."
    echo
    echo "Machine: $(nproc) cores, PostgreSQL $(q 'SHOW server_version') (fsync $(q 'SHOW fsync'), synchronous_commit $(q 'SHOW synchronous_commit'), full_page_writes $(q 'SHOW full_page_writes'), shared_buffers $(q 'SHOW shared_buffers')); pg_partman $(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'") (Debian postgresql-15-partman $partman_pkg, $installed). Load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); 1-minute load at each phase: ${loads[*]} (other sessions share the machine)."
    echo
    echo "Data: $total rows in each table ($MONTHS months x $ROWS_PER_MONTH, $PLAYERS players, inserted in"
    echo "time order in committed batches of $BATCH). One table: $size_plain. Partitioned: $parts"
    echo "partitions (pg_partman monthly, 2 made ahead, and a default), $size_part."
    echo "Insert totals: $(echo "$insert_sum" | paste -sd ';' | sed 's/;/; /g')."
    if ((EVENT_ROWS > 0)); then
        echo "scheduled_events copy: $EVENT_ROWS delivered events over 60 days, $events_size before"
        echo "the delete (random uuid keys, the package's nine indexes)."
    fi
    echo
    echo "| step | table | runs | rows (each) | seconds (median, min–max) | µs per row | WAL |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    echo "$table"
    echo
    echo "Plan of the last-row-before read on the partitioned table (every partition below the"
    echo "instant is probed; the one-table plan is one index scan):"
    echo
    echo '```'
    echo "$plan_part"
    echo '```'
} >"$results"
echo "partition bench: written to $results" >&2
