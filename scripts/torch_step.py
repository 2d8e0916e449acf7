#!/usr/bin/env python3
"""The LeOCLR / MoCo-v2 training step in PyTorch, the same model and step as `leoclr bench`
measures: for side-by-side speed (scripts/bench-vs-torch.sh) and, on the same weights and views,
the same loss (crates/leoclr-core/tests/pytorch.rs checks it to 1e-4).

One step: EMA update of the key encoder, keys (no gradient), queries, InfoNCE against the positive
and the queue, backward, SGD (momentum 0.9, weight decay 5e-4), enqueue. One image = its two crops
plus its original, as `leoclr bench` counts it.

    torch_step.py bench --method leoclr --backbone tiny --channels 1 --res 28 --batch 256 \\
        --queue 4096 --small-stem 0 --threads 2 --steps 10 --warmup 3
    torch_step.py loss WEIGHTS_DIR METHOD BACKBONE CHANNELS SMALL_STEM TEMPERATURE
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_resnet import LAYOUTS, leoclr_resnet, load_safetensors  # noqa: E402

# (query views, key views) per method: 0 crop 1, 1 crop 2, 2 original (leoclr's loss.rs).
VIEWS = {
    "leoclr": ([0, 1], [2]),
    "leoclr-query": ([2], [0, 1]),
    "mocov2": ([0, 1], [0, 1]),
    "mocov2-asym": ([0], [1]),
}


class Encoder(nn.Module):
    def __init__(self, backbone, channels, small_stem, hidden, out):
        super().__init__()
        self.backbone = leoclr_resnet(backbone, channels, small_stem)
        self.backbone.fc = nn.Identity()
        block, _, widths = LAYOUTS[backbone]
        dims = [widths[3] * block.expansion] + hidden + [out]
        layers = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.head = nn.Sequential(*layers)

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def info_nce(q, k, queue, t):
    pos = (q * k.detach()).sum(1, keepdim=True)
    neg = q @ queue.detach().t()
    logits = torch.cat([pos, neg], 1) / t
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


def objective(method, q, k, queue, t):
    """The loss and the keys to enqueue, as leoclr's `objective`."""
    if method == "leoclr":
        return info_nce(q[0], k[2], queue, t) + info_nce(q[1], k[2], queue, t), k[2]
    if method == "leoclr-query":
        return info_nce(q[2], k[0], queue, t) + info_nce(q[2], k[1], queue, t), torch.cat([k[0], k[1]])
    if method == "mocov2":
        return info_nce(q[0], k[1], queue, t) + info_nce(q[1], k[0], queue, t), torch.cat([k[0], k[1]])
    return info_nce(q[0], k[1], queue, t), k[1]


class Step:
    def __init__(self, method, online, queue, t=0.1, lr=0.06, m=0.99):
        self.method, self.online, self.t, self.lr, self.m = method, online, t, lr, m
        self.key = copy.deepcopy(online)
        for p in self.key.parameters():
            p.requires_grad = False
        self.queue, self.ptr = queue, 0
        self.opt = torch.optim.SGD(online.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)

    def __call__(self, views):
        with torch.no_grad():
            for pk, pq in zip(self.key.parameters(), self.online.parameters()):
                pk.mul_(self.m).add_(pq.detach(), alpha=1 - self.m)
        qv, kv = VIEWS[self.method]
        with torch.no_grad():
            k = {i: self.key(views[i]) for i in kv}
        q = {i: self.online(views[i]) for i in qv}
        loss, keys = objective(self.method, q, k, self.queue, self.t)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        n, kq = keys.shape[0], self.queue.shape[0]
        idx = (torch.arange(n) + self.ptr) % kq
        self.queue[idx] = keys.detach()
        self.ptr = (self.ptr + n) % kq
        return loss


def bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    backbone = a.backbone
    hidden = [LAYOUTS[backbone][2][3] * LAYOUTS[backbone][0].expansion]
    online = Encoder(backbone, a.channels, bool(a.small_stem), hidden, 128)
    online.train()
    queue = F.normalize(torch.randn(a.queue, 128), dim=1)
    step = Step(a.method, online, queue)
    views = [torch.randn(a.batch, a.channels, a.res, a.res) for _ in range(3)]
    t0 = time.perf_counter()
    step(views).item()
    first = time.perf_counter() - t0
    for _ in range(a.warmup):
        step(views).item()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step(views)
    loss.item()
    secs = (time.perf_counter() - t0) / a.steps
    print(json.dumps({
        "framework": "pytorch " + torch.__version__,
        "threads": torch.get_num_threads(),
        "method": a.method,
        "backbone": backbone,
        "res": a.res,
        "batch": a.batch,
        "step_ms": 1000 * secs,
        "images_per_s": a.batch / secs,
        "first_step_s": first,
    }))


def loss(weights, method, backbone, channels, small_stem, t):
    """The first step's loss on the weights, views and queue leoclr wrote to `weights`."""
    channels = int(channels)
    head = load_safetensors(os.path.join(weights, "head.safetensors"))
    outs = [head[f"layers.{i}.weight"].shape[0] for i in range(len(head) // 2)]
    online = Encoder(backbone, channels, small_stem in ("1", "true", "True"), outs[:-1], outs[-1])
    online.backbone.load_state_dict(load_safetensors(os.path.join(weights, "backbone.safetensors")), strict=False)
    online.head.load_state_dict({f"{2 * i}.{w}": head[f"layers.{i}.{w}"] for i in range(len(outs)) for w in ("weight", "bias")})
    online.train()
    views = []
    for i in range(3):
        v = torch.from_numpy(np.load(os.path.join(weights, f"view{i}.npy")))
        side = int(round((v.shape[1] / channels) ** 0.5))
        views.append(v.reshape(v.shape[0], channels, side, side))
    queue = torch.from_numpy(np.load(os.path.join(weights, "queue.npy")))
    step = Step(method, online, queue, t=float(t))
    print(json.dumps({"loss": step(views).item()}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "loss":
        loss(*sys.argv[2:])
        sys.exit(0)
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["bench"])
    p.add_argument("--method", default="leoclr", choices=sorted(VIEWS))
    p.add_argument("--backbone", default="tiny", choices=sorted(LAYOUTS))
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--res", type=int, default=28)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--queue", type=int, default=4096)
    p.add_argument("--small-stem", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    bench(p.parse_args())
