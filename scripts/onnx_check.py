"""Checks a backbone exported by `leoclr export --format onnx` outside this project.

  python3 scripts/onnx_check.py check MODEL.onnx X.npy FEATURES.npy
      The `onnx` package's checker (full check, with strict shape inference), then the graph run
      node by node with PyTorch's functional ops (a small reference interpreter of the seven
      operator types the exporter writes), compared with FEATURES (burn's on the same input X).
  python3 scripts/onnx_check.py ort MODEL.onnx X.npy FEATURES.npy
      The same comparison through ONNX Runtime (`pip install onnxruntime`).

Each prints one JSON object. Debian's python3-onnx (1.12), python3-torch and python3-numpy serve
`check`; ONNX Runtime is not packaged by Debian, so `ort` runs in a virtual environment.
"""

import json
import sys

import numpy as np


def _compare(got, features):
    want = np.load(features)
    return {
        "max_abs_diff": float(np.abs(got - want).max()),
        "max_abs_feature": float(np.abs(want).max()),
        "shape": list(got.shape),
    }


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _run_reference(model, x):
    """Runs the graph with torch.nn.functional; refuses operators it does not know."""
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper

    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    env[model.graph.input[0].name] = torch.from_numpy(x)
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[n] for n in node.input]
        op = node.op_type
        if op == "Conv":
            t, l, b, r = a["pads"]
            if (t, l) != (b, r):
                raise ValueError(f"{node.name}: asymmetric pads {a['pads']}")
            bias = ins[2] if len(ins) > 2 else None
            y = F.conv2d(ins[0], ins[1], bias, a["strides"], (t, l), a["dilations"], a["group"])
        elif op == "BatchNormalization":
            y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a["epsilon"])
        elif op == "Relu":
            y = F.relu(ins[0])
        elif op == "MaxPool":
            t, l, b, r = a["pads"]
            y = F.max_pool2d(ins[0], a["kernel_shape"], a["strides"], (t, l), a["dilations"], bool(a["ceil_mode"]))
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "GlobalAveragePool":
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = torch.flatten(ins[0], a["axis"])
        else:
            raise ValueError(f"{node.name}: operator {op} unknown to the reference interpreter")
        env[node.output[0]] = y
    return env[model.graph.output[0].name].numpy()


def check(path, inputs, features):
    import onnx
    import torch

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    with torch.no_grad():
        got = _run_reference(model, np.load(inputs))
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    out = {
        "onnx": onnx.__version__,
        "opset": [o.version for o in model.opset_import],
        "ir_version": model.ir_version,
        "nodes": len(model.graph.node),
        "ops": sorted({n.op_type for n in model.graph.node}),
        "input": [model.graph.input[0].name] + dims(model.graph.input[0]),
        "output": [model.graph.output[0].name] + dims(model.graph.output[0]),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }
    out.update(_compare(got, features))
    print(json.dumps(out))


def ort(path, inputs, features):
    import onnxruntime

    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.load(inputs)
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    out = {"onnxruntime": onnxruntime.__version__}
    out.update(_compare(got, features))
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("check", "ort"):
        sys.exit(__doc__)
    {"check": check, "ort": ort}[sys.argv[1]](*sys.argv[2:])
