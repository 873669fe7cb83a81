#!/usr/bin/env bash
# Load benchmark: builds Parlor, the bare relay and parlor-load in release mode, then
# drives each with the same customers and agents over real WebSockets and prints what
# it measured, side by side: first the bare relay (no storage, no routing: the floor
# any chat server stands on here), then Parlor on a fresh SQLite database. Arguments go
# to parlor-load (see `parlor-load --help`), e.g.
#   scripts/bench-load.sh --customers 10000 --agents 205 --rate 5000 --duration 30 --ramp 2000
# PARLOR_BENCH_RATES="2000 5000 8000" runs the pair once per rate (the --rate given is
# then overridden); PARLOR_BENCH_BARE=off leaves the bare relay out, =only runs it alone;
# PARLOR_BENCH_SERVER=path runs that Parlor binary instead of this one (an older build,
# for a before and after in the same conditions); PARLOR_BENCH_POSTGRES=on runs Parlor on
# a throwaway PostgreSQL on this machine (scripts/postgres.sh) instead of SQLite;
# PARLOR_BENCH_NODES=3 runs three Parlor nodes on PostgreSQL and a throwaway NATS
# (scripts/nats.sh), the load spread over them (their memory is printed per node).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p parlor-server -p parlor-load
ulimit -n "$(ulimit -Hn)"
port=${PARLOR_BENCH_PORT:-18181}
password=bench-admin-password
nodes=${PARLOR_BENCH_NODES:-1}
servers=()
data=
pg=
nats=
stop() {
  for server in "${servers[@]}"; do
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  done
  servers=()
  if [ -n "$data" ]; then rm -rf "$data"; fi
  data=
  if [ -n "$pg" ]; then
    scripts/postgres.sh stop "$pg"
    rm -rf "$pg"
  fi
  pg=
  if [ -n "$nats" ]; then
    scripts/nats.sh stop "$nats"
    rm -rf "$nats"
  fi
  nats=
}
trap stop EXIT

wait_for() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answered at $1" >&2
  return 1
}

bare() {
  target/release/bare-relay "127.0.0.1:$port" &
  servers=($!)
  wait_for "http://127.0.0.1:$port/"
  target/release/parlor-load --bare --url "http://127.0.0.1:$port" --admin-password unused \
    --server-pid "${servers[0]}" "$@"
  stop
}

parlor() {
  data=$(mktemp -d)
  local database= bus= urls=()
  if [ "${PARLOR_BENCH_POSTGRES:-off}" = on ] || [ "$nodes" -gt 1 ]; then
    pg=$(mktemp -d)
    database=$(scripts/postgres.sh start "$pg")
    echo "Parlor on PostgreSQL ($(pg_config --version))"
  fi
  if [ "$nodes" -gt 1 ]; then
    nats=$(mktemp -d)
    bus=$(scripts/nats.sh start "$nats")
    echo "$nodes Parlor nodes and NATS ($(nats-server --version))"
  fi
  for i in $(seq 0 $((nodes - 1))); do
    mkdir -p "$data/$i"
    # Every simulated customer comes from this one address: lift the per-address limits.
    env PARLOR_MESSAGES_PER_IP_PER_SEC=1000000 PARLOR_CHATS_PER_IP_PER_MINUTE=1000000 PARLOR_CONNECTIONS_PER_IP=0 \
    PARLOR_ADDR=127.0.0.1:$((port + i)) PARLOR_DATA_DIR=$data/$i PARLOR_ADMIN_PASSWORD=$password \
    ${database:+PARLOR_DATABASE_URL=$database} ${bus:+PARLOR_NATS_URL=$bus} \
      RUST_LOG=${RUST_LOG:-warn} "${PARLOR_BENCH_SERVER:-target/release/parlor}" >"$data/$i/server.log" 2>&1 &
    servers+=($!)
    # One after another: the first makes the admin on the empty database.
    wait_for "http://127.0.0.1:$((port + i))/healthz"
    urls+=("http://127.0.0.1:$((port + i))")
  done
  if [ "$nodes" -gt 1 ]; then
    target/release/parlor-load --urls "$(IFS=,; echo "${urls[*]}")" --admin-password "$password" "$@"
    for i in "${!servers[@]}"; do
      echo "  node $i: $(awk '/VmRSS/ {print $2, $3}' "/proc/${servers[$i]}/status") resident, CPU $(awk '{printf "%.1f s", ($14 + $15) / 100}' "/proc/${servers[$i]}/stat")"
    done
  else
    target/release/parlor-load --url "${urls[0]}" --admin-password "$password" \
      --server-pid "${servers[0]}" "$@"
  fi
  stop
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); open-file limit $(ulimit -n)"
for rate in ${PARLOR_BENCH_RATES:-given}; do
  args=("$@")
  [ "$rate" = given ] || args+=(--rate "$rate")
  if [ "${PARLOR_BENCH_BARE:-on}" != off ]; then
    bare "${args[@]}"
  fi
  if [ "${PARLOR_BENCH_BARE:-on}" != only ]; then
    parlor "${args[@]}"
  fi
done
