#!/usr/bin/env bash
# Installs what building and testing Parlor needs, skipping what is already there:
# the wasm32 target, Trunk, the wasm-bindgen CLI matching Cargo.lock, the npm tools
# (wasm-opt from binaryen, Playwright), and with --browser Debian's Chromium.
# Everything comes from the package registries (crates.io, npm, Debian); no binary
# downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

with_browser=false
[ "${1:-}" = "--browser" ] && with_browser=true

step() { printf '\n== %s\n' "$*"; }
timed() {
  local start=$SECONDS
  "$@"
  echo "   ($(( SECONDS - start ))s)"
}

step "Rust target wasm32-unknown-unknown"
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "   present"
else
  timed rustup target add wasm32-unknown-unknown
fi

step "Trunk 0.21"
if trunk --version 2>/dev/null | grep -q '^trunk 0\.21\.'; then
  echo "   present: $(trunk --version)"
else
  echo "   building from crates.io (about 9 minutes on 2 cores)"
  timed cargo install --locked trunk --version '~0.21'
fi

bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if ! grep -q "wasm_bindgen = \"$bindgen\"" Trunk.toml; then
  echo "Trunk.toml [tools] wasm_bindgen must be $bindgen, the version in Cargo.lock" >&2
  exit 1
fi
step "wasm-bindgen CLI $bindgen"
if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $bindgen" ]; then
  echo "   present"
else
  echo "   building from crates.io (about 6 minutes on 2 cores)"
  # Without --locked: the CLI's own lockfile names a crate version the registry lacks.
  timed cargo install wasm-bindgen-cli --version "=$bindgen"
fi

step "npm tools (wasm-opt from binaryen, Playwright)"
if [ -x node_modules/.bin/wasm-opt ] && [ -x node_modules/.bin/playwright ] \
   && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "   present"
else
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timed npm ci --no-audit --no-fund
fi

if $with_browser; then
  step "Chromium (Debian)"
  if [ -x /usr/bin/chromium ]; then
    echo "   present: $(/usr/bin/chromium --version 2>/dev/null)"
  else
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    timed $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timed $sudo apt-get install -y -qq chromium chromium-driver
  fi
fi
