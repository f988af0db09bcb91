#!/usr/bin/env bash
# Side by side: nikita-tasks, Procrastinate, PgQueuer and the pg_cron polling design, on one
# PostgreSQL cluster, with the same workloads (docs/bench.md). Prints the markdown table.
#
#   bench/peers/run.sh [--quick] [--out-dir DIR] [CLUSTER_URL]
#
# CLUSTER_URL: a superuser URL of the cluster to use (its database part is only used to connect
# for CREATE/DROP DATABASE); default: $DATABASE_URL, else the embedded cluster (scripts/db.sh
# up). Each system gets a fresh database nikita_bench_peer_<system>, dropped at the end; the
# database named `nikita` (pg_cron's) is never touched. Results: DIR/<system>.json and
# DIR/peers.md (default DIR: ${TMPDIR:-/tmp}/nikita-bench-peers). About 6 minutes on 2 cores;
# --quick (reduced counts) about 1 minute.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
quick=()
out_dir=${TMPDIR:-/tmp}/nikita-bench-peers
cluster=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --out-dir) out_dir=$2; shift ;;
        --out-dir=*) out_dir=${1#--out-dir=} ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) cluster=$1 ;;
    esac
    shift
done

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

systems=(nikita procrastinate pgqueuer)
drop_all() {
    local s
    for s in "${systems[@]}"; do
        "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS nikita_bench_peer_$s WITH (FORCE)" \
            2>/dev/null || say "could not drop nikita_bench_peer_$s"
    done
}
trap drop_all EXIT

mkdir -p "$out_dir"
rm -f "$out_dir"/*.json "$out_dir/peers.md"
drop_all
failed=()
started=$SECONDS
for s in "${systems[@]}"; do
    db=nikita_bench_peer_$s
    "${psql_admin[@]}" -c "CREATE DATABASE $db"
    case "$s" in
        nikita) py=$root/.venv/bin/python ;;
        *) py=$bench_py ;;
    esac
    say "$s (${quick[*]:-full})"
    t0=$SECONDS
    if timeout 600 "$py" "$here/${s}_bench.py" --dsn "$(db_url "$db")" \
        --out "$out_dir/$s.json" "${quick[@]}"; then
        say "$s done in $((SECONDS - t0)) s"
    else
        say "$s FAILED (exit $?), see above"
        failed+=("$s")
    fi
    "${psql_admin[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
python3 "$here/polling_model.py" --period 60 --out "$out_dir/polling_1min.json" "${quick[@]}"
python3 "$here/polling_model.py" --period 300 --out "$out_dir/polling_5min.json" "${quick[@]}"
say "all harnesses in $((SECONDS - started)) s"

python3 "$here/render.py" --dsn "$admin" --out "$out_dir/peers.md" "$out_dir"/*.json
if [ ${#failed[@]} -gt 0 ]; then
    say "failed: ${failed[*]}"
    exit 1
fi
