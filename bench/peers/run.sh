#!/usr/bin/env bash
# Side by side: nikita-tasks (and its async-commit mode when the shim has it), Graphile Worker
# (its performance configuration and its default), PgQueuer, Procrastinate and the pg_cron
# polling design, on one PostgreSQL cluster, with the same workloads (docs/bench.md), in
# alternating rounds. Prints the markdown table (medians over the rounds, min-max).
#
#   bench/peers/run.sh [--quick] [--rounds N] [--out-dir DIR] [CLUSTER_URL]
#
# CLUSTER_URL: a superuser URL of the cluster to use (its database part is only used to connect
# for CREATE/DROP DATABASE); default: $DATABASE_URL, else the embedded cluster (scripts/db.sh
# up). The cluster must run on this host (CPU is read from /proc). Each system gets a fresh
# database nikita_bench_peer_<system>, kept across the rounds and dropped at the end; the
# database named `nikita` (pg_cron's) is never touched. Round r runs every system once, the
# order rotated by one per round. Results: DIR/rounds/<system>.r<N>.json and DIR/peers.md
# (default DIR: ${TMPDIR:-/tmp}/nikita-bench-peers). N defaults to 3. About 12 minutes on 2
# cores; --quick (reduced counts) about 2 minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
quick=()
rounds=3
out_dir=${TMPDIR:-/tmp}/nikita-bench-peers
cluster=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --rounds) rounds=$2; shift ;;
        --rounds=*) rounds=${1#--rounds=} ;;
        --out-dir) out_dir=$2; shift ;;
        --out-dir=*) out_dir=${1#--out-dir=} ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) cluster=$1 ;;
    esac
    shift
done
case "$rounds" in
    ''|*[!0-9]*) echo "run.sh: --rounds needs a number" >&2; exit 2 ;;
esac

say() { printf 'bench-peers: %s\n' "$*" >&2; }

if [ -z "$cluster" ]; then
    cluster=${DATABASE_URL:-$("$root/scripts/db.sh" up)}
fi
case "$cluster" in
    postgres://*|postgresql://*) ;;
    *) say "CLUSTER_URL must be a postgresql:// URL, got: $cluster"; exit 2 ;;
esac

# the same URL with another database name (query string kept)
db_url() {
    python3 - "$cluster" "$1" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
PY
}

admin=$(db_url postgres)
psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -d "$admin")

[ -x "$root/.venv/bin/python" ] || { say "the project venv is missing: run 'make venv'"; exit 1; }
bench_py=$("$here/setup.sh")
systems=(nikita)
if "$root/.venv/bin/python" "$here/nikita_bench.py" --probe-durability; then
    systems+=(nikita_async)
else
    say "the shim has no NIKITA_SHIM_TELEGRAM_DURABILITY setting: no async-commit column"
fi
if node_modules=$("$here/setup_node.sh"); then
    systems+=(gw_perf gw_default)
else
    say "Graphile Worker could not be installed (node/npm): its columns are left out"
fi
systems+=(pgqueuer procrastinate)

drop_all() {
    local s
    for s in "${systems[@]}"; do
        "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS nikita_bench_peer_$s WITH (FORCE)" \
            2>/dev/null || say "could not drop nikita_bench_peer_$s"
    done
}
trap drop_all EXIT

# the command of one system's harness (without --dsn/--out/--round)
harness() {
    case "$1" in
        nikita) echo "$root/.venv/bin/python $here/nikita_bench.py" ;;
        nikita_async) echo "$root/.venv/bin/python $here/nikita_bench.py --durability async" ;;
        gw_perf) echo "node $here/gw_bench.cjs --config perf" ;;
        gw_default) echo "node $here/gw_bench.cjs --config default" ;;
        *) echo "$bench_py $here/${1}_bench.py" ;;
    esac
}

mkdir -p "$out_dir/rounds"
rm -f "$out_dir"/*.json "$out_dir"/rounds/*.json "$out_dir/peers.md"
drop_all
for s in "${systems[@]}"; do
    "${psql_admin[@]}" -c "CREATE DATABASE nikita_bench_peer_$s"
done
failed=()
started=$SECONDS
n=${#systems[@]}
for ((r = 1; r <= rounds; r++)); do
    for ((i = 0; i < n; i++)); do
        s=${systems[$(((i + r - 1) % n))]}
        say "round $r/$rounds: $s (${quick[*]:-full})"
        t0=$SECONDS
        # shellcheck disable=SC2046 # the harness command is split on purpose
        if NODE_PATH=${node_modules:-} timeout 400 $(harness "$s") \
            --dsn "$(db_url "nikita_bench_peer_$s")" --round "$r" \
            --out "$out_dir/rounds/$s.r$r.json" "${quick[@]}"; then
            say "round $r: $s done in $((SECONDS - t0)) s"
        else
            say "round $r: $s FAILED (exit $?), see above"
            failed+=("$s/r$r")
        fi
    done
done
python3 "$here/polling_model.py" --period 60 --out "$out_dir/polling_1min.json" "${quick[@]}"
python3 "$here/polling_model.py" --period 300 --out "$out_dir/polling_5min.json" "${quick[@]}"
say "all harnesses in $((SECONDS - started)) s"

python3 "$here/render.py" --dsn "$admin" --out "$out_dir/peers.md" \
    "$out_dir"/rounds/*.json "$out_dir"/polling_*.json
if [ ${#failed[@]} -gt 0 ]; then
    say "failed: ${failed[*]}"
    exit 1
fi
