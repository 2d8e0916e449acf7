#!/usr/bin/env bash
# Every convolution of a model's training step outside the model: forward, input gradient and
# weight gradient, in burn's CPU backend, in ours (shaders/) and in PyTorch, same shapes, same
# thread count, same way of timing (median of 5 rounds; a backward pass timed with its forward,
# the forward then subtracted). Prints one table with GFLOP/s per layer and pass.
#
#   bash scripts/conv-repro.sh                 # tiny model, 28 px, batch 768 (256 images x 3 views)
#   MODEL=resnet18 BATCH=96 bash scripts/conv-repro.sh   # ResNet-18 small stem, 32 px
#
# Builds with the test command's cargo shape; needs Debian's python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
THREADS="${THREADS:-$(nproc)}"
MODEL="${MODEL:-tiny}"
BATCH="${BATCH:-768}"
cargo build --workspace --all-targets
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $THREADS threads"
echo "burn $(grep -m1 -A1 '^name = "burn"$' Cargo.lock | tail -1 | cut -d'"' -f2) flex and ours:"
RAYON_NUM_THREADS="$THREADS" "$CARGO_TARGET_DIR/debug/examples/conv_repro" "$MODEL" "$BATCH" | tee "$out/rust.md"
echo "PyTorch:"
/usr/bin/python3 - "$THREADS" "$MODEL" "$BATCH" "$out/rust.md" <<'PYEOF'
import sys, time, torch
threads, model, batch, rust = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
F = torch.nn.functional

def layers():
    # The same list as crates/leoclr-core/examples/conv_repro.rs.
    if model == "resnet18":
        blocks, widths, c, side, small = [2, 2, 2, 2], [64, 128, 256, 512], 3, 32, True
    else:
        blocks, widths, c, side, small = [1, 1, 1, 1], [16, 32, 64, 128], 1, 28, False
    out = []
    if small:
        out.append(("stem 3x3", c, widths[0], side, 3, 1))
    else:
        out.append(("stem 7x7/2", c, widths[0], side, 7, 2))
        side = -(-(-(-side // 2)) // 2)
    c = widths[0]
    for stage, (n, w) in enumerate(zip(blocks, widths)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            name = f"layer{stage + 1}.{b}"
            out.append((f"{name} conv1", c, w, side, 3, stride))
            if stride != 1 or c != w:
                out.append((f"{name} downsample", c, w, side, 1, stride))
            side = -(-side // stride)
            out.append((f"{name} conv2", w, w, side, 3, 1))
            c = w
    return out

def timed(reps, f):
    f()
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        rounds.append((time.perf_counter() - t) * 1000 / reps)
    return sorted(rounds)[2]

torch_ms = {}
for name, c, k, side, ks, stride in layers():
    x = torch.randn(batch, c, side, side)
    w = torch.randn(k, c, ks, ks)
    pad = ks // 2
    o = -(-side // stride)
    flops = 2.0 * batch * k * o * o * c * ks * ks
    reps = int(min(max(2e9 / flops, 1), 50))
    fwd = lambda: F.conv2d(x, w, stride=stride, padding=pad)
    with torch.no_grad():
        f = timed(reps, fwd)
    torch_ms[(name, "forward")] = f
    for p in ["input grad", "weight grad"]:
        if name.startswith("stem") and p == "input grad":
            continue
        xr = x.clone().requires_grad_(p == "input grad")
        wr = w.clone().requires_grad_(p == "weight grad")
        def back():
            F.conv2d(xr, wr, stride=stride, padding=pad).sum().backward()
            xr.grad = None
            wr.grad = None
        # A difference within timing noise of the forward says nothing: shown as n/a.
        b = timed(reps, back) - f
        torch_ms[(name, p)] = b if b > 0.05 * f else None

print("| layer | pass | burn GFLOP/s | ours GFLOP/s | PyTorch GFLOP/s | ours ms | PyTorch ms | ours / PyTorch |")
print("|---|---|---|---|---|---|---|---|")
tot_ours = tot_torch = 0.0
for line in open(rust):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 9 or cells[0] in ("layer", "all") or cells[0].startswith("-"):
        continue
    name, _, _, p, _, ours, gb, go, _ = cells
    t = torch_ms[(name, p)]
    if t is None:
        print(f"| {name} | {p} | {gb} | {go} | n/a | {float(ours):.2f} | n/a | n/a |")
        continue
    gflop = float(go) * float(ours) / 1e3
    tot_ours += float(ours)
    tot_torch += t
    print(f"| {name} | {p} | {gb} | {go} | {gflop / t * 1e3:.1f} | {float(ours):.2f} | {t:.2f} | {t / float(ours):.2f}x |")
print(f"| all measured | | | | | {tot_ours:.1f} | {tot_torch:.1f} | {tot_torch / tot_ours:.2f}x |")
PYEOF
