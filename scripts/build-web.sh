#!/usr/bin/env bash
# Builds Parlor's two browser apps with Trunk into dist/widget and dist/console, using
# the size-optimised `wasm-release` profile. Tools must be installed (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
for app in widget console; do
  start=$(date +%s)
  trunk build --release --offline=true --cargo-profile wasm-release \
    "$app.html" --dist "dist/$app" --public-url "/$app/"
  # Trunk names the page after its source; the server serves index.html.
  if [ -f "dist/$app/$app.html" ]; then mv "dist/$app/$app.html" "dist/$app/index.html"; fi
  echo "built $app in $(( $(date +%s) - start ))s"
done
node scripts/minify-loader.mjs
node scripts/precompress.mjs
