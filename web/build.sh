#!/usr/bin/env bash
# Builds the browser app: two modules from crates/leoclr-web (cargo profile `web`, wasm32):
#   web/pkg          the viewer, what the page loads first (CPU inference and CPU training);
#   web/pkg-webgpu   the training module (feature `webgpu`), loaded only when a visitor with a
#                    WebGPU adapter asks for it;
# and copies the bundled model and gallery to web/pkg/assets (the page fetches them beside the
# module). Each module: cargo → wasm-opt (binaryen, if installed; before wasm-bindgen: Debian's
# binaryen 108 run after it breaks the module) → wasm-bindgen --target web. Serve web/ with any
# static file server. ONLY=viewer builds the viewer alone (quicker while iterating).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Its own target directory: the wasm build then never waits on (or evicts) the native one.
export CARGO_TARGET_DIR="$LEOCLR_CACHE/target-web"
out="$CARGO_TARGET_DIR/wasm32-unknown-unknown/web"
opt_level="${WASM_OPT:-}"

module() { # name, then cargo feature arguments
  local name="$1"
  shift
  cargo build --profile web --target wasm32-unknown-unknown -p leoclr-web "$@"
  # Kept with its name section: `python3 scripts/wasm_sizes.py` reads it.
  cp "$out/leoclr_web.wasm" "$out/$name.raw.wasm"
  if [ -n "$opt_level" ] && wasm-opt "$opt_level" --enable-bulk-memory \
      --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
      --enable-reference-types --enable-multivalue \
      "$out/$name.raw.wasm" -o "$out/$name.opt.wasm" 2>/tmp/leoclr-wasm-opt.log; then
    echo "wasm-opt $opt_level ($name): $(stat -c %s "$out/$name.raw.wasm") -> $(stat -c %s "$out/$name.opt.wasm") bytes"
  else
    [ -n "$opt_level" ] && echo "wasm-opt failed (see /tmp/leoclr-wasm-opt.log); using the module as built"
    cp "$out/$name.raw.wasm" "$out/$name.opt.wasm"
  fi
  rm -rf "web/$name"
  # The name section only names frames in stack traces; panics still print message and place.
  wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "web/$name" "$out/$name.opt.wasm" --out-name leoclr_web
  local w="web/$name/leoclr_web_bg.wasm"
  echo "$w: $(stat -c %s "$w") bytes, gzip -9: $(gzip -9 -c "$w" | wc -c) bytes"
}

module pkg
if [ "${ONLY:-}" != viewer ]; then
  module pkg-webgpu --features webgpu
fi
mkdir -p web/pkg/assets
cp assets/web/model.leoclr assets/web/gallery-images-idx3-ubyte.gz \
  assets/web/gallery-labels-idx1-ubyte.gz assets/web/gallery-features.f32 web/pkg/assets/
# Download sizes, for the page's "Train on WebGPU" offer and the browser test's size gate.
{
  printf '{'
  sep=""
  for name in pkg pkg-webgpu; do
    w="web/$name/leoclr_web_bg.wasm"
    [ -f "$w" ] || continue
    printf '%s"%s": {"raw": %s, "gzip": %s}' "$sep" "$name" "$(stat -c %s "$w")" "$(gzip -9 -c "$w" | wc -c)"
    sep=", "
  done
  printf '}\n'
} > web/pkg/sizes.json
cat web/pkg/sizes.json
