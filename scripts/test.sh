#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then formats-checks,
# lints and runs every test (CPU, and wgpu on Mesa's lavapipe Vulkan driver).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# lavapipe (CPU Vulkan) for the wgpu test; the Vulkan loader. Debian's PyTorch and torchvision
# for the round trip of exported backbones (about 2 minutes to install; the test fails rather
# than skips without them here).
apt_install mesa-vulkan-drivers libvulkan1 python3-torch python3-torchvision python3-numpy
export LEOCLR_REQUIRE_TORCH=1
rustup component add rustfmt clippy >/dev/null 2>&1 || true

start=$(date +%s)
cargo fmt --all --check
# One cargo invocation shape everywhere (--workspace, all targets): feature unification then
# matches and burn is compiled once for tests, clippy metadata and the binary.
cargo build --workspace --all-targets
cargo clippy --workspace --all-targets -- -D warnings
# The fuzz targets (crates/leoclr-core/tests/fuzz.rs) get 12 s each here; longer runs:
# LEOCLR_FUZZ_SECS=600 cargo test --workspace fuzz_ -- --nocapture (same cargo shape: no rebuild)
LEOCLR_FUZZ_SECS="${LEOCLR_FUZZ_SECS:-12}" cargo test --workspace
echo "native tests finished in $(( $(date +%s) - start )) s"
# The browser build in headless Chromium.
bash scripts/test-web.sh
echo "test suite finished in $(( $(date +%s) - start )) s"
