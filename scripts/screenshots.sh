#!/usr/bin/env bash
# Screenshots of the app's four panels for the docs, taken from the real window under Xvfb (wgpu on
# Mesa's lavapipe when no GPU): Views, Training (the curves of runs/demo), Retrieval, Map.
# Needs a trained run: `bash scripts/train-demo.sh` makes runs/demo. Writes docs/screenshots/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
apt_install xvfb xauth mesa-vulkan-drivers libvulkan1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libx11-xcb1
run="${1:-runs/demo}"
[ -f "$run/checkpoint.leoclr" ] || { echo "no checkpoint in $run: run scripts/train-demo.sh first" >&2; exit 1; }
cargo build --workspace --all-targets
xvfb-run -a -s "-screen 0 1280x800x24" \
  "$CARGO_TARGET_DIR/debug/leoclr-app" --data assets/fashion-mnist-subset --model "$run" --run "$run" \
  --screenshots docs/screenshots
