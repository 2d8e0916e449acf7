#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then formats-checks,
# lints and runs every test (CPU, and wgpu on Mesa's lavapipe Vulkan driver).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# lavapipe (CPU Vulkan) for the wgpu test; the Vulkan loader. Debian's PyTorch, torchvision and
# onnx for the round trips of exported backbones (about 2 minutes to install; the tests fail
# rather than skip without them here).
apt_install mesa-vulkan-drivers libvulkan1 python3-torch python3-torchvision python3-numpy \
  python3-onnx python3-venv
export LEOCLR_REQUIRE_TORCH=1
# ONNX Runtime is not packaged by Debian: the Python registry's wheel, in a virtual environment in
# the cache (about 15 s the first time). Without the registry the ONNX test still runs the
# checker and the PyTorch interpreter, and says ONNX Runtime was not run.
ort_venv="$LEOCLR_CACHE/onnxruntime-venv"
if [ ! -x "$ort_venv/bin/python" ] || ! "$ort_venv/bin/python" -c "import onnxruntime" 2>/dev/null; then
  rm -rf "$ort_venv"
  /usr/bin/python3 -m venv "$ort_venv" && "$ort_venv/bin/pip" install -q onnxruntime \
    || { echo "warning: could not install onnxruntime; the ONNX test runs without it"; rm -rf "$ort_venv"; }
fi
if [ -x "$ort_venv/bin/python" ]; then
  export LEOCLR_ORT_PYTHON="$ort_venv/bin/python" LEOCLR_REQUIRE_ORT=1
fi
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
