#!/usr/bin/env bash
# The same training step in burn's CPU backend (`leoclr bench --step-only`) and in PyTorch
# (scripts/torch_step.py: same model, same step, same loss on the same weights — checked by
# crates/leoclr-core/tests/pytorch.rs), on the same thread count, alternating ROUNDS times, then a
# table of images/s (median of the rounds) and the ratio burn / PyTorch. Installs Debian's PyTorch
# and OpenBLAS (so PyTorch is not held back by the reference BLAS) when missing.
#
#   bash scripts/bench-vs-torch.sh            # ROUNDS=3, THREADS=all cores, release build
#   PROFILE=dev bash scripts/bench-vs-torch.sh   # the test command's build (dev profile)
#   CONV=burn,ours bash scripts/bench-vs-torch.sh   # burn's CPU convolution and ours, a row each
#
# The release build is a second build of burn (about 45 minutes cold on 2 cores, once); the dev
# one reuses the test command's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
apt_install python3-torch python3-torchvision python3-numpy libopenblas0-openmp
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
  release) cargo build --release -p leoclr-cli; B="$CARGO_TARGET_DIR/release/leoclr" ;;
  dev) cargo build --workspace --all-targets; B="$CARGO_TARGET_DIR/debug/leoclr" ;;
  *) echo "PROFILE is release or dev" >&2; exit 2 ;;
esac
PY="${LEOCLR_PYTHON:-/usr/bin/python3}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-3}"
CONV="${CONV:-ours}"
OUT="${OUT:-runs/bench-vs-torch.jsonl}"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
# method backbone channels res batch small_stem steps warmup (ResNet-18 steps take seconds here)
CONFIGS=(
  "leoclr tiny 1 28 256 0 10 2"
  "mocov2-asym tiny 1 28 256 0 10 2"
  "leoclr resnet18 3 32 32 1 3 1"
  "mocov2-asym resnet18 3 32 32 1 3 1"
)
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(grep -o -m1 'avx512f' /proc/cpuinfo || echo 'no AVX-512')"
echo "burn (flex, $PROFILE build, conv $CONV) vs $("$PY" -c 'import torch; print("PyTorch", torch.__version__)'), $THREADS threads, $ROUNDS rounds, CPU: $CPU"
for round in $(seq "$ROUNDS"); do
  for c in "${CONFIGS[@]}"; do
    read -r method backbone channels res batch stem steps warmup <<< "$c"
    small=false; [ "$stem" = 1 ] && small=true
    RAYON_NUM_THREADS="$THREADS" "$B" bench --backends cpu --step-only --json --method "$method" \
      --backbone "$backbone" --small-stem "$small" --channels "$channels" --res "$res" \
      --batch "$batch" --queue 4096 --steps "$steps" --warmup "$warmup" --e2e-batches 1 --conv "$CONV" \
      | grep '^{' | sed "s/^{/{\"framework\":\"burn\",\"round\":$round,\"config\":\"$c\",/" >> "$OUT"
    OMP_NUM_THREADS="$THREADS" "$PY" scripts/torch_step.py bench --method "$method" \
      --backbone "$backbone" --channels "$channels" --res "$res" --batch "$batch" \
      --small-stem "$stem" --threads "$THREADS" --steps "$steps" --warmup "$warmup" \
      | sed "s/^{/{\"round\":$round,\"config\":\"$c\",/" >> "$OUT"
    echo "round $round: $c done"
  done
done
"$PY" - "$OUT" "$CPU" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
configs = list(dict.fromkeys(r["config"] for r in rows))
print(f"\nCPU: {sys.argv[2]}")
print("\n| method | backbone | res | batch | conv | burn images/s | PyTorch images/s | burn / PyTorch | per round |")
print("|---|---|---|---|---|---|---|---|---|")
for c in configs:
    # torch_step.py names itself "pytorch <version>".
    t = [r["images_per_s"] for r in rows if r["config"] == c and r["framework"].startswith("pytorch")]
    convs = list(dict.fromkeys(r["conv"] for r in rows if r["config"] == c and r["framework"] == "burn"))
    for conv in convs:
        b = [r["images_per_s"] for r in rows if r["config"] == c and r["framework"] == "burn" and r["conv"] == conv]
        m, bb, ch, res, batch = c.split()[:5]
        per = " / ".join(f"{x / y:.2f}" for x, y in zip(b, t))
        print(f"| {m} | {bb}{' small stem' if c.split()[5] == '1' else ''} | {res} | {batch} | {conv} | "
              f"{statistics.median(b):.1f} | {statistics.median(t):.1f} | "
              f"{statistics.median(b) / statistics.median(t):.2f} | {per} |")
PYEOF
