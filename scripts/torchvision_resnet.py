#!/usr/bin/env python3
"""torchvision ResNets shaped like leoclr's backbones, and a check of an exported state dict.

    from torchvision_resnet import leoclr_resnet, load_safetensors
    model = leoclr_resnet("resnet18", in_channels=3, small_stem=True)
    missing, unexpected = model.load_state_dict(load_safetensors("backbone.safetensors"), strict=False)
    # missing == ["fc.weight", "fc.bias"]; model.fc = torch.nn.Identity() gives the features.

`resnet18`/`resnet50` with the standard stem are torchvision's own models; the small stem is
conv1 3x3 stride 1 with the max-pool replaced by identity (the CIFAR recipe); `tiny` is a
torchvision ResNet with one BasicBlock a stage and widths 16-32-64-128.

    python3 scripts/torchvision_resnet.py check WEIGHTS INPUT.npy FEATURES.npy BACKBONE IN_CHANNELS SMALL_STEM

loads WEIGHTS, runs INPUT through the model in eval mode and prints, as JSON, the largest
difference from FEATURES and the missing / unexpected keys.
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

LAYOUTS = {
    "tiny": (BasicBlock, [1, 1, 1, 1], [16, 32, 64, 128]),
    "resnet18": (BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512]),
    "resnet50": (Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512]),
}


def leoclr_resnet(backbone="resnet18", in_channels=3, small_stem=False):
    block, layers, widths = LAYOUTS[backbone]
    model = ResNet(block, layers)
    if widths[0] != 64:
        model.inplanes = widths[0]
        model.layer1 = model._make_layer(block, widths[0], layers[0])
        model.layer2 = model._make_layer(block, widths[1], layers[1], stride=2)
        model.layer3 = model._make_layer(block, widths[2], layers[2], stride=2)
        model.layer4 = model._make_layer(block, widths[3], layers[3], stride=2)
        model.fc = nn.Linear(widths[3] * block.expansion, 1000)
    kernel, stride, pad = (3, 1, 1) if small_stem else (7, 2, 3)
    model.conv1 = nn.Conv2d(in_channels, widths[0], kernel, stride, pad, bias=False)
    model.bn1 = nn.BatchNorm2d(widths[0])
    if small_stem:
        model.maxpool = nn.Identity()
    return model


def load_safetensors(path):
    """safetensors.torch.load_file where the `safetensors` package is installed, else a reader of
    the (simple) format: an 8-byte header length, a JSON header, the raw little-endian data."""
    try:
        from safetensors.torch import load_file

        return load_file(path)
    except ImportError:
        pass
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = np.frombuffer(raw[8 + n + start : 8 + n + end], dtype=dtypes[info["dtype"]])
        out[name] = torch.from_numpy(data.reshape(info["shape"]).copy())
    return out


def check(weights, inputs, features, backbone, in_channels, small_stem):
    model = leoclr_resnet(backbone, int(in_channels), small_stem in ("1", "true", "True"))
    missing, unexpected = model.load_state_dict(load_safetensors(weights), strict=False)
    model.fc = nn.Identity()
    model.eval()
    with torch.no_grad():
        got = model(torch.from_numpy(np.load(inputs))).numpy()
    want = np.load(features)
    print(
        json.dumps(
            {
                "max_abs_diff": float(np.abs(got - want).max()),
                "max_abs_feature": float(np.abs(want).max()),
                "missing": sorted(missing),
                "unexpected": sorted(unexpected),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[1] != "check":
        sys.exit(__doc__)
    check(*sys.argv[2:])
