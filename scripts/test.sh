#!/usr/bin/env bash
# Runs every Parlor test: formatting and lints, the protocol and server tests (unit,
# property and real-socket integration tests) on SQLite and again on PostgreSQL with
# the cluster tests on NATS (throwaway servers, see scripts/postgres.sh and
# scripts/nats.sh), the release build of both browser apps
# with their size report, and the browser tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
total=$SECONDS
stage() {
  local name=$1; shift
  local start=$SECONDS
  printf '\n==== %s\n' "$name"
  "$@"
  printf '==== %s: %ss\n' "$name" "$(( SECONDS - start ))"
}

stage "setup" scripts/setup.sh --browser
stage "format" cargo fmt --all -- --check
stage "clippy (native)" cargo clippy --workspace --all-targets -- -D warnings
stage "clippy (wasm)" cargo clippy -p parlor-app --target wasm32-unknown-unknown -- -D warnings
stage "rust tests (SQLite)" cargo test -p parlor-protocol -p parlor-server

pg_dir=$(mktemp -d)
nats_dir=$(mktemp -d)
trap 'scripts/postgres.sh stop "$pg_dir"; scripts/nats.sh stop "$nats_dir"; rm -rf "$pg_dir" "$nats_dir"' EXIT
start=$SECONDS
printf '\n==== PostgreSQL and NATS\n'
pg_url=$(scripts/postgres.sh start "$pg_dir")
nats_url=$(scripts/nats.sh start "$nats_dir")
printf '==== PostgreSQL and NATS: %ss (%s, %s)\n' "$(( SECONDS - start ))" "$pg_url" "$nats_url"
# Each test makes a database of its own on this server; the cluster tests run several
# nodes on one database and this NATS server.
stage "rust tests (PostgreSQL, NATS)" env PARLOR_TEST_POSTGRES="$pg_url" PARLOR_TEST_NATS="$nats_url" \
  cargo test -p parlor-server
stage "web build" scripts/build-web.sh
stage "size report" node scripts/size-report.mjs
stage "server build" cargo build -p parlor-server
# Each browser test starts its own Parlor (this build) on a free port.
stage "browser tests" bash -c 'cd tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx playwright test'
printf '\nAll Parlor tests passed in %ss.\n' "$(( SECONDS - total ))"
