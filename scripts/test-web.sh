#!/usr/bin/env bash
# The browser tests, from a fresh machine: installs Debian's chromium, the wasm32 target,
# wasm-bindgen-cli (the version Cargo.lock pins) and playwright-core (npm; it drives the system
# chromium, no browser download), builds web/ and drives it headless twice: with Chromium's
# defaults (no WebGPU adapter: CPU fallback) and with SwiftShader WebGPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

apt_install chromium
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
tools="$LEOCLR_CACHE/tools"
export PATH="$tools/bin:$PATH"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
  # Not --locked: its lock pins a webpki-roots the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "=$want" --root "$tools"
fi
(cd tests/web && npm install --no-audit --no-fund --silent)
start=$(date +%s)
# Lints for the browser target too (both modules' code: the viewer's and the WebGPU feature's).
CARGO_TARGET_DIR="$LEOCLR_CACHE/target-web" cargo clippy --target wasm32-unknown-unknown \
  -p leoclr-web --features webgpu -- -D warnings
bash web/build.sh
node tests/web/app.test.mjs
node tests/web/app.test.mjs --webgpu
echo "browser tests finished in $(( $(date +%s) - start )) s"
