#!/usr/bin/env bash
# make bench: every benchmark of the project, assembled into bench/RESULTS.md.
#
#   scripts/bench.sh            full run (~20 minutes on 2 cores; the side-by-side part ~10-12)
#   scripts/bench.sh --quick    smaller counts, a smoke run, into bench/RESULTS-quick.md
#                               (git-ignored: it never replaces the full results)
#
# Uses DATABASE_URL's cluster (a superuser URL) or the embedded one. Every benchmark creates and
# drops its own database; the project database (pg_cron's) is never touched. Not part of
# `make test`: speed is measured here, never asserted in tests.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
quick=false
results=bench/RESULTS.md
if [ "${1:-}" = "--quick" ]; then
    quick=true
    results=bench/RESULTS-quick.md
fi

cluster=${DATABASE_URL:-$(scripts/db.sh up)}
export DATABASE_URL=$cluster
work=$(mktemp -d "${TMPDIR:-/tmp}/nikita-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date -u +%s)

say() { printf '\n== bench: %s\n' "$*" >&2; }
status=0

if $quick; then
    queue_env=(EVENTS=20000 USERS=2000 SCHEDULE_SINGLE=500 SCHEDULE_BULK=5000)
    decay_sizes=(100000)
    shim_args=(--events 20000 --users 5000 --samples 100)
    peers_args=(--quick)
else
    queue_env=()
    decay_sizes=(100000 1000000)
    shim_args=()
    peers_args=()
fi

say "SQL queue: claim/complete throughput, scheduling cost"
env "${queue_env[@]}" OUT="$work/queue.md" bench/queue_bench.sh || status=1

say "decay: ${decay_sizes[*]} eligible players"
DECAY_BENCH_RESULTS="$work/decay.md" bench/decay_bench.sh "${decay_sizes[@]}" || status=1

say "shim: latency, drain, memory"
.venv/bin/python bench/shim_bench.py "${shim_args[@]}" >"$work/shim.md" || status=1

say "side by side: Graphile Worker, PgQueuer, Procrastinate, pg_cron polling (3 rounds)"
bench/peers/run.sh "${peers_args[@]}" --out-dir "$work/peers" "$cluster" || status=1

# helper "perf"'s profile of the queue path (markdown on stdout), when the tree has it
profile_status=absent
if [ -f bench/profile_queue.py ]; then
    say "profile: bench/profile_queue.py"
    if .venv/bin/python bench/profile_queue.py >"$work/profile.md" 2>"$work/profile.err"; then
        profile_status=ok
    else
        profile_status=failed
        tail -20 "$work/profile.err" >&2
    fi
fi

pg_version=$(psql -X -tAc 'SHOW server_version' -d "$cluster")
pg_settings=$(psql -X -tA -F ' = ' -d "$cluster" -c "SELECT name, current_setting(name)
    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers',
    'wal_level', 'max_wal_size', 'max_connections', 'jit') ORDER BY name")
elapsed=$(( $(date -u +%s) - started ))
cmd="make bench"
$quick && cmd="scripts/bench.sh --quick"

# Each part's own headings go below this file's "##" level.
section() {
    if [ -s "$1" ]; then
        sed -e 's/^#\{1,2\} /### /' "$1"
        echo
    else
        echo "_(this benchmark failed; see the log of \`$cmd\`)_"
    fi
}

{
    echo "# Benchmark results"
    echo
    echo "Produced by \`$cmd\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s."
    echo
    echo "## Machine"
    echo
    echo "- $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "  $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- PostgreSQL $pg_version, settings:"
    echo "$pg_settings" | sed 's/^/  - /'
    echo
    echo "Issue 14's targets, judged against the best peer of the same run in the side-by-side"
    echo "section: drain ≥ best peer, due-now p50 and p99 ≤ best peer, CPU (shim + PostgreSQL) per"
    echo "1,000 events ≤ best peer, future lateness p99 ≤ 20 ms, idle RSS ≤ 60 MB. DESIGN.md's"
    echo "absolute targets: due-now p50 ≤ 2 ms and p99 ≤ 4 ms; drain ≥ 20,000 events/s with one"
    echo "shim; decay of 1,000,000 players ≤ 30 s with no transaction over 2 s. Each section says"
    echo "which are met and by how much the others are missed. Figures on this shared 2-core"
    echo "machine move with its load."
    echo
    echo "## Side by side: nikita-tasks, Graphile Worker, PgQueuer, Procrastinate (bench/peers/run.sh)"
    echo
    section "$work/peers/peers.md"
    case $profile_status in
        ok)
            echo "## Profile (bench/profile_queue.py)"
            echo
            section "$work/profile.md"
            ;;
        failed)
            echo "## Profile (bench/profile_queue.py)"
            echo
            echo "_(bench/profile_queue.py failed; see the log of \`$cmd\`)_"
            echo
            ;;
    esac
    echo "## The shim alone (bench/shim_bench.py)"
    echo
    section "$work/shim.md"
    echo "## The SQL queue alone (bench/queue_bench.sh)"
    echo
    section "$work/queue.md"
    echo "## Decay (bench/decay_bench.sh)"
    echo
    section "$work/decay.md"
    echo "## Decay at 10,000,000 players beside the app (make bench-scale)"
    echo
    echo "Not part of \`make bench\` (it needs ~25 minutes and ~10 GB): its last run, with the"
    echo "command and the machine's load, is [bench/SCALE-RESULTS.md](SCALE-RESULTS.md)."
    echo
} >"$results"
say "wrote $results (${elapsed} s)"
exit $status
