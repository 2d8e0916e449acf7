#!/usr/bin/env bash
# Builds the browser app into web/pkg: cargo (release, wasm32) → wasm-opt -O2 on the raw module if
# binaryen is installed (before wasm-bindgen: Debian's binaryen 108 run after it breaks the module)
# → wasm-bindgen --target web. Serve web/ with any static file server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Its own target directory: the wasm build then never waits on (or evicts) the native one.
export CARGO_TARGET_DIR="$LEOCLR_CACHE/target-web"
cargo build --release --target wasm32-unknown-unknown -p leoclr-web
raw="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/leoclr_web.wasm"
opt="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/leoclr_web.opt.wasm"
if command -v wasm-opt >/dev/null && wasm-opt -O2 --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$raw" -o "$opt" 2>/tmp/leoclr-wasm-opt.log; then
  echo "wasm-opt: $(stat -c %s "$raw") -> $(stat -c %s "$opt") bytes"
else
  echo "wasm-opt unavailable or failed (see /tmp/leoclr-wasm-opt.log); using the unoptimised module"
  cp "$raw" "$opt"
fi
rm -rf web/pkg
# The name section (~8 MB) only names frames in stack traces; panics still print message and place.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir web/pkg "$opt" --out-name leoclr_web
echo "web/pkg/leoclr_web_bg.wasm: $(stat -c %s web/pkg/leoclr_web_bg.wasm) bytes, gzip -9: $(gzip -9 -c web/pkg/leoclr_web_bg.wasm | wc -c) bytes"
