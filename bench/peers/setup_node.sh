#!/usr/bin/env bash
# (Re)create the bench-only Node.js folder .bench-node at the repository root (git-ignored) with
# Graphile Worker pinned by bench/peers/gw/package.json and package-lock.json (`npm ci`).
# Idempotent: a folder whose recorded lock checksum matches is left alone (no network).
#
#   bench/peers/setup_node.sh           create or update .bench-node, print its node_modules
#   BENCH_NODE=/path bench/peers/setup_node.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${BENCH_NODE:-$root/.bench-node}
stamp=$dir/.lock.sha256

say() { printf 'bench-node: %s\n' "$*" >&2; }

command -v node >/dev/null || { say "node (>= 18) is required for the Graphile Worker peer"; exit 1; }
command -v npm >/dev/null || { say "npm is required for the Graphile Worker peer"; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
    || { say "node >= 18 is required, found $(node --version)"; exit 1; }

sum=$(cat "$here/gw/package.json" "$here/gw/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -d "$dir/node_modules/graphile-worker" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "$dir/node_modules"
    exit 0
fi
say "installing graphile-worker (npm ci) into $dir"
mkdir -p "$dir"
cp "$here/gw/package.json" "$here/gw/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "$sum" >"$stamp"
echo "$dir/node_modules"
