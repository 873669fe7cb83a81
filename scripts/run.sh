#!/usr/bin/env bash
# Runs Parlor: installs what is missing, builds the widget and the console, builds and
# starts the server on SQLite (./data). Prints the console URL, the demo URL and, on the
# first start, the admin login. Flags are passed to the server (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
scripts/build-web.sh
cargo build --release -p parlor-server
exec target/release/parlor "$@"
