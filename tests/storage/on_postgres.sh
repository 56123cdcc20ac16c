#!/usr/bin/env bash
# Run a command (the storage tests) with SENTIBOT_TEST_POSTGRES_URL pointing at PostgreSQL.
#
#   bash tests/storage/on_postgres.sh .venv/bin/python -m pytest -q tests/storage
#
# With SENTIBOT_TEST_POSTGRES_URL already set, the command just runs. Otherwise a throw-away
# server is made with initdb (found through pg_config or /usr/lib/postgresql/*/bin) in a temporary
# folder, listening on 127.0.0.1 at a free port with trust authentication, and removed afterwards.
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail

if [[ -n "${SENTIBOT_TEST_POSTGRES_URL:-}" ]]; then
    exec "$@"
fi

bindir=""
if command -v pg_config >/dev/null; then bindir=$(pg_config --bindir); fi
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    echo "on_postgres.sh: PostgreSQL's initdb not found (install postgresql, or set" \
        "SENTIBOT_TEST_POSTGRES_URL)" >&2
    exit 2
fi

workdir=$(mktemp -d -t sentibot-pg-XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_server() { if [[ $(id -u) == 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[[ $(id -u) == 0 ]] && chown postgres "$workdir"
cleanup() {
    as_server "'$bindir/pg_ctl' -D '$workdir/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT

as_server "'$bindir/initdb' -D '$workdir/data' -A trust -U postgres" >"$workdir/initdb.log" 2>&1 \
    || { cat "$workdir/initdb.log" >&2; exit 1; }
as_server "'$bindir/pg_ctl' -D '$workdir/data' -w -l '$workdir/server.log' -o \
    '-p $port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null \
    || { cat "$workdir/server.log" >&2; exit 1; }

export SENTIBOT_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
echo "on_postgres.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at port $port"
"$@"
