#!/usr/bin/env bash
# Load benchmark: builds Parlor and parlor-load in release mode, starts Parlor on a
# fresh SQLite database, drives it with customers and agents over real WebSockets and
# prints what it measured. Arguments go to parlor-load (see `parlor-load --help`), e.g.
#   scripts/bench-load.sh --customers 10000 --agents 210 --rate 2000 --duration 60
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p parlor-server -p parlor-load
ulimit -n "$(ulimit -Hn)"
data=$(mktemp -d)
port=${PARLOR_BENCH_PORT:-18181}
password=bench-admin-password
# Every simulated customer comes from this one address: lift the per-address limits.
PARLOR_MESSAGES_PER_IP_PER_SEC=1000000 PARLOR_CHATS_PER_IP_PER_MINUTE=1000000 PARLOR_CONNECTIONS_PER_IP=0 \
PARLOR_ADDR=127.0.0.1:$port PARLOR_DATA_DIR=$data PARLOR_ADMIN_PASSWORD=$password \
  RUST_LOG=${RUST_LOG:-warn} target/release/parlor >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); open-file limit $(ulimit -n)"
target/release/parlor-load --url "http://127.0.0.1:$port" --admin-password "$password" \
  --server-pid "$server" "$@"
