#!/usr/bin/env bash
# The issue-6 table on a GPU machine: ResNet-18 (small stem, 32 px, batch 256 and 512) and ResNet-50
# (224 px, batch 256) on RGB inputs, LeOCLR and asymmetric MoCo-v2, f32 and bf16, views from the CPU loader and
# from the device kernels, each backend the binary has. Every configuration runs twice in a row, so
# the second `first_step_s` is the warm-cache figure (needs a binary built with `persistence`).
#
# Build here (no GPU needed), carry the binary, run there:
#   cargo build --release -p leoclr-cli --features autotune,fusion,persistence[,vulkan]
#   bash scripts/gpu-bench.sh path/to/leoclr OUT_DIR [backends]
# Rows go to OUT_DIR/bench.jsonl (one JSON object per line, each with a `devices` field), the log
# to OUT_DIR/bench.log. DEVICES=1,2,4 adds data-parallel rows (`leoclr train --devices N`'s step on
# that many GPUs, docs/scaling.md); the default 1 adds none. For CUDA's collectives build with
# `--features cuda` and pass `cuda` as the backend.
set -uo pipefail
BIN="${1:?path to a release leoclr binary}"
OUT="${2:?output directory}"
BACKENDS="${3:-wgpu}"
mkdir -p "$OUT"
# NVIDIA's Vulkan driver is not always registered with the loader (see ../shared/notes).
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
done
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-balanced}"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/gpu.txt"

run() { # label, bench arguments...
  local label="$1"; shift
  echo "== $label: $*" | tee -a "$OUT/bench.log"
  timeout 900 "$BIN" bench --json "$@" 2>>"$OUT/bench.log" | tee -a "$OUT/bench.jsonl"
}

for precision in f32 bf16; do
  for cfg in "resnet18 32 256" "resnet18 32 512" "resnet50 224 256"; do
    set -- $cfg
    for method in leoclr mocov2-asym; do
      for pass in cold warm; do
        run "$pass" --backends "$BACKENDS" --precision "$precision" --method "$method" \
          --backbone "$1" --res "$2" --batch "$3" --channels 3 --queue 4096 --steps 20 --warmup 5 \
          --e2e-batches 20 --augment-on cpu,device
      done
    done
  done
done
DEVICES="${DEVICES:-1}"
if [ "$DEVICES" != "1" ]; then
  for cfg in "resnet18 32 256" "resnet50 224 256"; do
    set -- $cfg
    run "devices $DEVICES" --backends "$BACKENDS" --devices "$DEVICES" --method leoclr \
      --backbone "$1" --res "$2" --batch "$3" --channels 3 --queue 4096 --steps 20 --warmup 5
  done
fi
echo "rows: $(wc -l < "$OUT/bench.jsonl")"
