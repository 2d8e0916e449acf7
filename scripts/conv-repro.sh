#!/usr/bin/env bash
# The convolution the tiny model's CPU step spends most on, in burn alone and in PyTorch, same
# shapes, same thread count: a minimal reproduction to report upstream (docs/performance.md).
# Builds with the test command's cargo shape; needs Debian's python3-torch for the second half.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
THREADS="${THREADS:-$(nproc)}"
cargo build --workspace --all-targets
echo "burn $(grep -m1 -A1 '^name = "burn"$' Cargo.lock | tail -1 | cut -d'"' -f2) flex, $THREADS threads:"
RAYON_NUM_THREADS="$THREADS" "$CARGO_TARGET_DIR/debug/examples/conv_repro"
echo "PyTorch, $THREADS threads:"
/usr/bin/python3 - "$THREADS" <<'PYEOF'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
F = torch.nn.functional
for name, x, w, stride, pad in [
    ("stem: 7x7 stride 2, 1 -> 16 channels", torch.randn(768, 1, 28, 28), torch.randn(16, 1, 7, 7), 2, 3),
    ("block: 3x3 stride 1, 16 -> 16 channels", torch.randn(768, 16, 7, 7), torch.randn(16, 16, 3, 3), 1, 1),
]:
    run = lambda: F.conv2d(x, w, stride=stride, padding=pad)
    out = run()
    t = time.perf_counter()
    for _ in range(10):
        run()
    ms = (time.perf_counter() - t) * 100
    flops = 2 * out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
    print(f"{name:<40} x {list(x.shape)} w {list(w.shape)}: {ms:8.2f} ms  {flops / ms / 1e6:6.2f} GFLOP/s")
PYEOF
