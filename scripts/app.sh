#!/usr/bin/env bash
# Opens the desktop app on the bundled data. With a trained run (scripts/train-demo.sh writes
# runs/demo) it also loads its model and shows its curves. Extra arguments go to `leoclr-app`
# (--data DIR, --model CKPT, --run DIR, --compute auto|cpu|wgpu).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --workspace --all-targets
args=(--data assets/fashion-mnist-subset)
if [ -f runs/demo/checkpoint.leoclr ]; then
  args+=(--model runs/demo --run runs/demo)
fi
exec "$CARGO_TARGET_DIR/debug/leoclr-app" "${args[@]}" "$@"
