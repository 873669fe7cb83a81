#!/usr/bin/env bash
# A local Parlor cluster, to try several nodes: a throwaway PostgreSQL and NATS
# (scripts/postgres.sh, scripts/nats.sh, installed from Debian's packages if missing)
# and N Parlor nodes on one database, on ports 8081, 8082, ... Prints each node's
# console URL and the admin login (made by the first node on the empty database).
#
#   scripts/cluster.sh start DIR [N]   # builds Parlor, starts N nodes (default 3)
#   scripts/cluster.sh kill DIR I      # kill -9 of node I: watch another take over
#   scripts/cluster.sh stop DIR        # stops the nodes, NATS and PostgreSQL
#
# PARLOR_CLUSTER_PORT sets the first node's port. Open any node's console and any
# node's demo page: a customer on one node chats with an agent on another. In
# production, put a load balancer with WebSocket support in front (no sticky sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

command=${1:-}
dir=${2:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start DIR [N] | kill DIR I | stop DIR" >&2
  exit 2
fi

# Starts node $1 on port $2 and waits until it says where it listens.
start_node() {
  local node="$dir/node-$1"
  mkdir -p "$node"
  PARLOR_DATABASE_URL=$database PARLOR_NATS_URL=$nats PARLOR_DATA_DIR=$node \
    PARLOR_ADDR="127.0.0.1:$2" nohup target/release/parlor >"$node/out.log" 2>&1 &
  echo $! >"$node/pid"
  for _ in $(seq 600); do
    if grep -q "Agent console:" "$node/out.log"; then
      echo "node $1 (pid $(cat "$node/pid")):"
      grep -E "Agent console:|Demo site:|Admin login:" "$node/out.log"
      return 0
    fi
    if ! kill -0 "$(cat "$node/pid")" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "node $1 did not start (see $node/out.log)" >&2
  return 1
}

case "$command" in
  start)
    count=${3:-3}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    scripts/setup.sh
    scripts/build-web.sh
    cargo build --release -p parlor-server
    database=$(scripts/postgres.sh start "$dir/postgres")
    nats=$(scripts/nats.sh start "$dir/nats")
    echo "PostgreSQL: $database"
    echo "NATS:       $nats"
    first=${PARLOR_CLUSTER_PORT:-8081}
    for i in $(seq "$count"); do
      start_node "$i" $((first + i - 1))
    done
    echo "Stop them with: $0 stop $dir"
    ;;
  kill)
    node=${3:?which node}
    kill -9 "$(cat "$dir/node-$node/pid")"
    echo "node $node killed"
    ;;
  stop)
    for pid in "$dir"/node-*/pid; do
      [ -f "$pid" ] || continue
      kill "$(cat "$pid")" 2>/dev/null || true
    done
    for pid in "$dir"/node-*/pid; do
      [ -f "$pid" ] || continue
      while kill -0 "$(cat "$pid")" 2>/dev/null; do sleep 0.1; done
      rm -f "$pid"
    done
    scripts/nats.sh stop "$dir/nats"
    scripts/postgres.sh stop "$dir/postgres"
    ;;
  *)
    echo "usage: $0 start DIR [N] | kill DIR I | stop DIR" >&2
    exit 2
    ;;
esac
