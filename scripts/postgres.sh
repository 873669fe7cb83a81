#!/usr/bin/env bash
# A throwaway PostgreSQL for Parlor's tests and local clusters, from Debian's packages
# (installed if missing): a new cluster in a folder of its own, on a free port, for the
# current user if it is not root and for the `postgres` user otherwise (initdb refuses
# root).
#
#   scripts/postgres.sh start DIR   # makes and starts the cluster in DIR; prints its URL
#   scripts/postgres.sh stop DIR    # stops it (DIR stays; remove it yourself)
#   scripts/postgres.sh resume DIR  # starts a stopped one again, on the same port
#
# The database `parlor` exists, owned by the user `parlor` (password `parlor`), who may
# create further databases (each test takes one of its own).
set -euo pipefail

command=${1:-}
dir=${2:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|resume DIR" >&2
  exit 2
fi

if [ "$command" = stop ] && ! command -v pg_config >/dev/null; then
  exit 0
fi
if ! command -v pg_config >/dev/null || [ ! -x "$(pg_config --bindir)/initdb" ]; then
  echo "installing PostgreSQL (Debian's package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(pg_config --bindir)

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Starts the cluster in $dir on port $1 and waits until it takes connections.
serve() {
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $1 -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
}

case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    echo "$port" >"$dir/port"
    serve "$port"
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE parlor LOGIN CREATEDB PASSWORD 'parlor'" \
      -c "CREATE DATABASE parlor OWNER parlor" >/dev/null
    echo "postgres://parlor:parlor@127.0.0.1:$port/parlor"
    ;;
  resume)
    serve "$(cat "$dir/port")"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop|resume DIR" >&2
    exit 2
    ;;
esac
