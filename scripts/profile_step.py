"""Groups a `perf script` call-graph dump of `leoclr bench --step-only` into the step's operations.

  RAYON_NUM_THREADS=1 perf record -F 99 --call-graph dwarf,65528 -o step.data -- \
      leoclr bench --backends cpu --step-only ...
  perf script -i step.data -F comm,tid,time,ip,sym --no-inline > step.txt
  python3 scripts/profile_step.py step.txt

One thread keeps each sample's whole stack (rayon's workers lose the caller). A sample counts for
the outermost operation on its stack (a convolution's backward counts as that, not as the matmul
it runs); samples outside the training step (reading data, building the model) are left out.
Prints a Markdown table: operation, share of the step's samples.
"""

import re
import sys
from collections import Counter

# (label, pattern) in priority order: the first pattern found anywhere on the stack wins, so the
# backward kinds come before the forward op they also contain.
CATEGORIES = [
    # Our kernels (shaders/, leoclr_kernels): the CPU backend's convolution since issue 24.
    ("conv2d backward: input gradient (ours)", r"leoclr_kernels::cpu::conv::conv2d_input_grad"),
    ("conv2d backward: weight gradient (ours)", r"leoclr_kernels::cpu::conv::conv2d_weight_grad"),
    ("conv2d forward (ours)", r"leoclr_kernels::cpu::conv::conv2d_forward"),
    ("conv2d backward: input gradient (conv_transpose2d)", r"conv2d_x_backward"),
    ("conv2d backward: weight gradient", r"conv2d_weight_backward"),
    ("max pool backward", r"max_pool2d_with_indices_backward|max_pool2d_backward"),
    ("conv2d forward (query and key encoders)", r"Autodiff<B,C>>>::conv2d|Flex>::conv2d|conv2d_f32|conv3d"),
    ("max pool forward", r"max_pool2d"),
    ("optimizer (SGD momentum, weight decay)", r"burn_optim|Optimizer"),
    ("BatchNorm forward (statistics and apply)", r"BatchNorm::forward"),
    ("EMA of the key encoder", r"leoclr_core::ema"),
    ("matmul (head, InfoNCE logits)", r"float_matmul|::matmul"),
    ("memory layout copies (transpose / reshape)", r"copy_2d_tiled|float_permute|into_contiguous|float_reshape"),
    ("reductions (BatchNorm statistics, means, sums)", r"float_sum_dim|float_mean_dim|float_sum\b|float_mean\b|reduce"),
    ("exp / log (softmax cross-entropy)", r"float_exp|float_log|__expf|__logf"),
    ("other elementwise (BatchNorm apply, ReLU, add, mask)", r"burn_flex::ops|burn_flex::zip|macerator|float_"),
]


def samples(path):
    stack = []
    for line in open(path, errors="replace"):
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line.startswith("\t") or line.startswith(" "):
            parts = line.strip().split(" ", 1)
            stack.append(parts[1] if len(parts) > 1 else "")
    if stack:
        yield stack


def main(path):
    step = re.compile(r"Trainer::step|trainer::Trainer::step|leoclr_core::trainer")
    compiled = [(label, re.compile(p)) for label, p in CATEGORIES]
    counts, total, outside = Counter(), 0, 0
    for stack in samples(path):
        text = "\n".join(stack)
        if not step.search(text):
            outside += 1
            continue
        total += 1
        for label, rx in compiled:
            if rx.search(text):
                counts[label] += 1
                break
        else:
            counts["rest (autodiff bookkeeping, allocation, kernel)"] += 1
    print(f"{total} samples in the training step ({outside} outside it left out)\n")
    print("| operation | share of the step |")
    print("|---|---|")
    for label, n in counts.most_common():
        print(f"| {label} | {100 * n / total:.1f}% |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
