#!/usr/bin/env bash
# The embedded PostgreSQL 15 cluster with pg_cron, used whenever DATABASE_URL is unset.
#
#   scripts/db.sh packages   install the Debian packages the project needs (root), or say which;
#                            optional ones (promtool) too, when it can
#   scripts/db.sh up         create/start the cluster (idempotent), print its URL
#   scripts/db.sh down       stop it
#   scripts/db.sh url        print the URL of the project database
#
# NIKITA_PGDATA / NIKITA_PGPORT / NIKITA_DB choose another cluster (tests start throwaway ones).
# NIKITA_CRON_DB puts pg_cron in another database (cron.database_name, e.g. postgres, as on
# managed services; set when the cluster is created), default NIKITA_DB.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${NIKITA_PGPORT:-54329}
DB=${NIKITA_DB:-nikita}
CRON_DB=${NIKITA_CRON_DB:-$DB}
PACKAGES=(postgresql-15 postgresql-client-15 postgresql-15-cron postgresql-15-pgtap
          libtap-parser-sourcehandler-pgtap-perl postgresql-15-plpgsql-check)
# Optional: installed when root can, else their tests skip with a message (promtool: the
# alert rules' tests; chromium: the dashboard's browser test). --no-install-recommends: the
# Prometheus server is not started.
OPTIONAL_PACKAGES=(prometheus chromium)

say() { printf 'db: %s\n' "$*" >&2; }
die() { printf 'db: error: %s\n' "$*" >&2; exit 1; }

# initdb and pg_ctl refuse to run as root: run them as the postgres user.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The data dir lives in the project unless the postgres user cannot reach it (e.g. a clone
# under /root); then it goes to /var/tmp, keyed by the project path so clones do not collide.
data_dir() {
    if [ -n "${NIKITA_PGDATA:-}" ]; then echo "$NIKITA_PGDATA"; return; fi
    if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$here"; then
        echo "$here/.pgdata/data"
    else
        echo "/var/tmp/nikita-tasks-$(printf '%s' "$here" | sha1sum | cut -c1-10)/data"
    fi
}

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

cmd_packages() {
    local missing
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        die "missing Debian packages: $missing
    install them with:  sudo apt-get install -y $missing"
    fi
    say "installing $missing"
    # The PGDG-less Debian image may not have package lists yet.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
        || die "apt-get update failed; install by hand: apt-get install -y $missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2 \
        || die "apt-get install failed; install by hand: apt-get install -y $missing"
}

optional_packages() {
    local p missing=""
    for p in "${OPTIONAL_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "optional packages missing (their tests will skip):$missing"; return 0
    fi
    say "installing optional$missing"
    # shellcheck disable=SC2086
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends $missing; }; } >&2 \
        || say "could not install$missing (their tests will skip)"
}

url() { echo "postgresql://postgres@127.0.0.1:$PORT/$DB"; }

cmd_up() {
    cmd_packages
    local data run
    data=$(data_dir)
    run="$(dirname "$data")/run"
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating cluster in $data (port $PORT)"
        mkdir -p "$data" "$run"
        [ "$(id -u)" = 0 ] && chown postgres: "$(dirname "$data")" "$data" "$run"
        chmod 700 "$data"
        as_owner "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >/dev/null
        cat >>"$data/postgresql.conf" <<EOF

# nikita-tasks embedded cluster
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$run'
shared_preload_libraries = 'pg_cron,pg_stat_statements'
cron.database_name = '$CRON_DB'
cron.host = '$run'
cron.timezone = 'UTC'
max_connections = 200
shared_buffers = 256MB
# Hourly decay rewrites every eligible player: fewer forced checkpoints (bench/decay_bench.sh).
max_wal_size = 4GB
fsync = on
log_min_messages = warning
EOF
    fi
    # pg_stat_statements (bench/profile_queue.py) joined pg_cron in shared_preload_libraries
    # later: a cluster created before gets the line appended, and a running one a restart.
    local restart=""
    if ! grep -q "^shared_preload_libraries = 'pg_cron,pg_stat_statements'" "$data/postgresql.conf"
    then
        say "adding pg_stat_statements to shared_preload_libraries"
        # appended: the last setting of a name wins, whatever the line above it says
        printf "shared_preload_libraries = 'pg_cron,pg_stat_statements'\n" \
            >>"$data/postgresql.conf"
        restart=yes
    fi
    if [ -n "$restart" ] && as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "restarting cluster on port $PORT (shared_preload_libraries changed)"
        as_owner "$PGBIN/pg_ctl" -D "$data" -l "$data/../postgres.log" -m fast -w -t 60 restart \
            >/dev/null || die "postgres did not restart; see $data/../postgres.log"
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "starting cluster on port $PORT"
        as_owner "$PGBIN/pg_ctl" -D "$data" -l "$data/../postgres.log" -w -t 60 start >/dev/null \
            || die "postgres did not start; see $data/../postgres.log"
    fi
    local psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
    if ! "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" \
        | grep -q 1; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE \"$DB\""
    fi
    # pg_cron can only live in cron.database_name (this database unless NIKITA_CRON_DB).
    "${psql[@]}" -d "$CRON_DB" -c 'CREATE EXTENSION IF NOT EXISTS pg_cron' 2>&1 \
        | grep -v 'already exists' >&2 || true
    url
}

cmd_down() {
    local data
    data=$(data_dir)
    if [ -f "$data/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        say "stopped cluster in $data"
    else
        say "no cluster running in $data"
    fi
}

case "${1:-}" in
    packages) cmd_packages; optional_packages ;;
    up) cmd_up ;;
    down) cmd_down ;;
    url) url ;;
    datadir) data_dir ;;
    *) die "usage: $0 packages|up|down|url|datadir" ;;
esac
