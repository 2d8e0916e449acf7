#!/usr/bin/env bash
# The main job: LeOCLR with the tiny ResNet on the bundled Fashion-MNIST subset (10,000 train,
# 2,000 test images in assets/), on the CPU; prints the kNN accuracy of the trained backbone next to
# the same backbone at random initialisation. Extra arguments go to `leoclr train`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --workspace --all-targets
"$CARGO_TARGET_DIR/debug/leoclr" train --data assets/fashion-mnist-subset --backbone tiny \
  --small-stem false --epochs 8 --batch 256 --out runs/demo --overwrite "$@"
