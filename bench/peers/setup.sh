#!/usr/bin/env bash
# (Re)create the bench virtualenv .bench-venv at the repository root from
# bench/peers/requirements.txt. Idempotent: a venv whose recorded requirements checksum matches
# is left alone; otherwise pip brings it to the pinned set (no network when already satisfied).
#
#   bench/peers/setup.sh            create or update .bench-venv, print its python
#   BENCH_VENV=/path bench/peers/setup.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${BENCH_VENV:-$root/.bench-venv}
req=$here/requirements.txt
stamp=$venv/.requirements.sha256

say() { printf 'bench-venv: %s\n' "$*" >&2; }

command -v python3 >/dev/null || { say "python3 (>= 3.11) is required"; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "python3 >= 3.11 is required, found $(python3 --version)"; exit 1; }

sum=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "$venv/bin/python"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    python3 -m venv "$venv" || { say "python3 -m venv failed: install python3-venv"; exit 1; }
fi
say "installing $(grep -cv '^\s*\(#\|$\)' "$req") pinned packages"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
echo "$sum" >"$stamp"
echo "$venv/bin/python"
