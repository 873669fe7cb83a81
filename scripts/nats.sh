#!/usr/bin/env bash
# A throwaway NATS server for Parlor's tests and local clusters, from Debian's package
# `nats-server` (installed if missing), on a free port, its files in a folder of its own.
#
#   scripts/nats.sh start DIR    # starts it; prints its URL
#   scripts/nats.sh stop DIR     # stops it (DIR stays; remove it yourself)
#   scripts/nats.sh resume DIR   # starts a stopped one again, on the same port
set -euo pipefail

command=${1:-}
dir=${2:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|resume DIR" >&2
  exit 2
fi

if [ "$command" != stop ] && ! command -v nats-server >/dev/null; then
  echo "installing nats-server (Debian's package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq nats-server >&2
fi

# Starts the server on port $1 and waits until it takes connections.
serve() {
  nohup nats-server -a 127.0.0.1 -p "$1" -l "$dir/server.log" >/dev/null 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "nats-server did not start on port $1 (see $dir/server.log)" >&2
  return 1
}

case "$command" in
  start)
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    serve "$port"
    echo "nats://127.0.0.1:$port"
    ;;
  resume)
    serve "$(cat "$dir/port")"
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      # Gone before this returns, so a resume can take the port again.
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
      done
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|resume DIR" >&2
    exit 2
    ;;
esac
