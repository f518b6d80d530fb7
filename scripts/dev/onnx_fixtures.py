#!/usr/bin/env python3
"""Dev tool: builds the small ONNX fixtures in configs/models/ and their ONNX Runtime outputs.

The tests never run Python; they read what this script wrote. Re-run it only to change the
fixtures (it is deterministic for one onnx/onnxruntime version):

    python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx onnxruntime numpy
    /tmp/onnx-venv/bin/python scripts/dev/onnx_fixtures.py

It writes, for the network `tiny` (every operator kind Systole imports):
  tiny_float.onnx             float model with BatchNormalization, ReLU, ReLU6 (Clip), a
                              depthwise conv, a residual Add, MaxPool, Concat, AveragePool,
                              GlobalAveragePool, Flatten and Gemm
  tiny_qdq.onnx               ONNX Runtime's quantize_static, QDQ format, int8 activations and
                              per-channel int8 weights
  tiny_qop.onnx               the same in QOperator format (QLinearConv, QLinearAdd,
                              QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool, QGemm)
  tiny_input.npy              one float32 input, NCHW
  tiny_calib.npy              the calibration batch given to quantize_static
  tiny_{float,qdq,qop,qop_u8}_out.npy  ONNX Runtime's outputs for tiny_input.npy
  tiny_qop_u8.onnx            the QOperator model with uint8 activations (ONNX Runtime's default)
  tiny_float_systole_out.npy  ONNX Runtime's output for tiny_float.onnx quantized by
                              `systole quantize` (calibrated on tiny_calib.npy); needs the
                              release binary: cargo build --release first
  tiny_qdq_trace/NAME.npy     every QuantizeLinear output of tiny_qdq.onnx under ONNX Runtime,
                              for per-node conformance tests

and, for each operator family of the mobile and classic networks (`families`; run alone
with `onnx_fixtures.py families`, which leaves the tiny_* files alone):
  ops_mobile                  HardSwish (opset 14), SiLU (Sigmoid, Mul), squeeze-and-excitation
                              (GlobalAveragePool, conv, ReLU, conv, HardSigmoid, Mul), LeakyRelu
  ops_shuffle                 Split, a branch, Concat, channel shuffle (Reshape, Transpose,
                              Reshape), ceil-mode MaxPool, nearest Resize
  ops_classic                 LRN then a ceil-mode MaxPool, Sub, Div (by activations and by
                              float constants), Sum, Softmax: float regions in ONNX Runtime
  ops_NAME.onnx               the float model; ops_NAME_{qdq,qop}.onnx quantize_static's int8
                              QDQ and QOperator models (per-channel weights)
  ops_NAME_input.npy          one float32 input; ops_NAME_{float,qdq,qop}_out.npy ONNX
                              Runtime's outputs for it; ops_NAME_qdq_trace/ every
                              QuantizeLinear output of the QDQ model
  ops_opset9.onnx             an opset-9 float model as old PyTorch exports: weights from
                              ConstantOfShape, a Shape -> Gather -> Unsqueeze -> Concat ->
                              Reshape flatten, Dropout, Pad and Clip with attribute forms;
                              ops_opset9_{input,float_out}.npy, and ops_opset9_systole_out.npy,
                              ONNX Runtime's output for it quantized by `systole quantize`
                              (calibrated on ops_opset9_calib.npy; needs the release binary)
"""

import os
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                      quantize_static)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "models")
RNG = np.random.default_rng(20261127)
SHAPE = [1, 3, 16, 16]


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def conv_weights(k, c, r):
    return (RNG.standard_normal((k, c, r, r)) * np.sqrt(2.0 / (c * r * r))).astype(np.float32)


def tiny_float():
    inits, nodes = [], []

    def conv(name, x, k, c, r, stride=1, pad=0, group=1, bn=False):
        w = conv_weights(k, c // group, r)
        b = (RNG.standard_normal(k) * 0.1).astype(np.float32)
        inits.extend([const(name + "_w", w), const(name + "_b", b)])
        out = name if not bn else name + "_pre"
        nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [out], name=name, kernel_shape=[r, r],
                                      strides=[stride, stride], pads=[pad] * 4, group=group))
        if bn:
            inits.extend([
                const(name + "_bn_s", (1 + 0.2 * RNG.standard_normal(k)).astype(np.float32)),
                const(name + "_bn_b", (0.1 * RNG.standard_normal(k)).astype(np.float32)),
                const(name + "_bn_m", (0.1 * RNG.standard_normal(k)).astype(np.float32)),
                const(name + "_bn_v", (0.5 + RNG.random(k)).astype(np.float32)),
            ])
            nodes.append(helper.make_node("BatchNormalization", [out] + [name + s for s in ["_bn_s", "_bn_b", "_bn_m", "_bn_v"]],
                                          [name], name=name + "_bn", epsilon=1e-5))
        return name

    def relu(x):
        nodes.append(helper.make_node("Relu", [x], [x + "_relu"], name=x + "_relu"))
        return x + "_relu"

    def relu6(x):
        inits.extend([const(x + "_lo", np.float32(0)), const(x + "_hi", np.float32(6))])
        nodes.append(helper.make_node("Clip", [x, x + "_lo", x + "_hi"], [x + "_relu6"], name=x + "_relu6"))
        return x + "_relu6"

    a = relu(conv("stem", "x", 8, 3, 3, stride=2, pad=1, bn=True))        # 8 x 8 x 8
    d = relu6(conv("dw", a, 8, 8, 3, pad=1, group=8))                      # depthwise
    p = conv("pw", d, 8, 8, 1)
    nodes.append(helper.make_node("Add", [a, p], ["res"], name="res"))
    nodes.append(helper.make_node("MaxPool", ["res"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    e = relu(conv("expand", "pool", 8, 8, 1))                              # 8 x 4 x 4
    nodes.append(helper.make_node("Concat", ["pool", e], ["cat"], name="cat", axis=1))   # 16 x 4 x 4
    nodes.append(helper.make_node("AveragePool", ["cat"], ["avg"], name="avg", kernel_shape=[2, 2], strides=[1, 1]))
    h = relu(conv("head", "avg", 24, 16, 3, pad=1))                       # 24 x 3 x 3
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat", axis=1))
    inits.extend([const("fc_w", (RNG.standard_normal((10, 24)) * 0.3).astype(np.float32)),
                  const("fc_b", (RNG.standard_normal(10) * 0.1).astype(np.float32))])
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="systole-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Reader(CalibrationDataReader):
    def __init__(self, batch):
        self.items = iter([{"x": batch[i:i + 1]} for i in range(batch.shape[0])])

    def get_next(self):
        return next(self.items, None)


def run(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def trace(path, x, out_dir):
    """Saves every QuantizeLinear output of the model at `path` run on `x`."""
    m = onnx.load(path)
    names = [n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear"]
    for name in names:
        m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.INT8, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    os.makedirs(out_dir, exist_ok=True)
    for name, value in zip(names, sess.run(names, {"x": x})):
        np.save(os.path.join(out_dir, name + ".npy"), value)


def quantize_both(pre, stem, calib, x):
    """quantize_static of the pre-processed model `pre` in QDQ and QOperator form (int8
    activations, per-channel int8 weights): STEM_{qdq,qop}.onnx, ONNX Runtime's outputs for
    `x`, and the QDQ model's QuantizeLinear trace."""
    for fmt, tag in [(QuantFormat.QDQ, "qdq"), (QuantFormat.QOperator, "qop")]:
        qpath = os.path.join(OUT, f"{stem}_{tag}.onnx")
        quantize_static(pre, qpath, Reader(calib), quant_format=fmt, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
        np.save(os.path.join(OUT, f"{stem}_{tag}_out.npy"), run(qpath, x))
        if tag == "qdq":
            trace(qpath, x, os.path.join(OUT, f"{stem}_qdq_trace"))
        ops = sorted({(n.domain or "ai.onnx") + ":" + n.op_type for n in onnx.load(qpath).graph.node})
        print(stem, tag, ops)


def main():
    os.makedirs(OUT, exist_ok=True)
    model = tiny_float()
    fpath = os.path.join(OUT, "tiny_float.onnx")
    onnx.save(model, fpath)
    calib = RNG.standard_normal([8] + SHAPE[1:]).astype(np.float32)
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    np.save(os.path.join(OUT, "tiny_calib.npy"), calib)
    np.save(os.path.join(OUT, "tiny_input.npy"), x)
    np.save(os.path.join(OUT, "tiny_float_out.npy"), run(fpath, x))
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(fpath, pre, skip_symbolic_shape=True)
        quantize_both(pre, "tiny", calib, x)
        # ONNX Runtime's default activation type, uint8, in the QOperator format.
        qpath = os.path.join(OUT, "tiny_qop_u8.onnx")
        quantize_static(pre, qpath, Reader(calib), quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
        np.save(os.path.join(OUT, "tiny_qop_u8_out.npy"), run(qpath, x))


def systole_quantized():
    """ONNX Runtime runs the model Systole's own post-training quantization writes."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with tempfile.TemporaryDirectory() as tmp:
        q = os.path.join(tmp, "q.onnx")
        subprocess.run([os.path.join(root, "target", "release", "systole"), "quantize", "--model",
                        os.path.join(OUT, "tiny_float.onnx"), "--calibrate", os.path.join(OUT, "tiny_calib.npy"),
                        "--out", q], check=True)
        onnx.checker.check_model(onnx.load(q))
        x = np.load(os.path.join(OUT, "tiny_input.npy"))
        np.save(os.path.join(OUT, "tiny_float_systole_out.npy"), run(q, x))


class FamilyBuilder:
    """A float NCHW graph under construction: nodes, initializers, shapes."""

    def __init__(self, name, shape):
        self.name, self.nodes, self.inits, self.count = name, [], [], 0
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)

    def fresh(self, base):
        self.count += 1
        return f"{base}{self.count}"

    def node(self, op, inputs, outputs=1, **attrs):
        name = self.fresh(op.lower())
        outs = [name] if outputs == 1 else [f"{name}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, arr, base="c"):
        name = self.fresh(base)
        self.inits.append(const(name, arr))
        return name

    def conv(self, x, k, c, r, stride=1, group=1):
        w = self.const(conv_weights(k, c // group, r), "w")
        b = self.const((RNG.standard_normal(k) * 0.1).astype(np.float32), "b")
        return self.node("Conv", [x, w, b], kernel_shape=[r, r], strides=[stride, stride], pads=[r // 2] * 4, group=group)

    def model(self, y, out_shape, opset):
        graph = helper.make_graph(self.nodes, self.name, [self.input], [helper.make_tensor_value_info(y, TensorProto.FLOAT, out_shape)],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="systole-fixtures")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def ops_mobile():
    g = FamilyBuilder("ops_mobile", [1, 4, 8, 8])
    h = g.node("HardSwish", [g.conv("x", 16, 4, 3)])
    c = g.conv(h, 16, 16, 3, group=16)
    silu = g.node("Mul", [c, g.node("Sigmoid", [c])])
    pool = g.node("GlobalAveragePool", [silu])
    gate = g.node("HardSigmoid", [g.conv(g.node("Relu", [g.conv(pool, 8, 16, 1)]), 16, 8, 1)], alpha=1.0 / 6, beta=0.5)
    se = g.node("Mul", [silu, gate])
    leaky = g.node("LeakyRelu", [g.conv(se, 16, 16, 1)], alpha=0.1)
    flat = g.node("Flatten", [g.node("GlobalAveragePool", [leaky])], axis=1)
    w = g.const((RNG.standard_normal((10, 16)) * 0.3).astype(np.float32), "fc_w")
    y = g.node("Gemm", [flat, w, g.const((RNG.standard_normal(10) * 0.1).astype(np.float32), "fc_b")], transB=1)
    return g.model(y, [1, 10], 14)


def ops_shuffle():
    g = FamilyBuilder("ops_shuffle", [1, 4, 9, 9])
    c = g.node("Relu", [g.conv("x", 16, 4, 3)])
    p = g.node("MaxPool", [c], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)                # 16 x 4 x 4
    left, right = g.node("Split", [p, g.const(np.array([8, 8], dtype=np.int64), "split")], outputs=2, axis=1)
    r = g.node("Relu", [g.conv(g.conv(right, 8, 8, 1), 8, 8, 3, group=8)])
    cat = g.node("Concat", [left, r], axis=1)
    grouped = g.node("Reshape", [cat, g.const(np.array([1, 2, 8, 4, 4], dtype=np.int64), "shape")])
    shuffled = g.node("Transpose", [grouped], perm=[0, 2, 1, 3, 4])
    flat = g.node("Reshape", [shuffled, g.const(np.array([1, 16, 4, 4], dtype=np.int64), "shape")])
    up = g.node("Resize", [flat, "", g.const(np.array([1, 1, 2, 2], dtype=np.float32), "scales")], mode="nearest")
    y = g.conv(up, 8, 16, 3)
    return g.model(y, [1, 8, 8, 8], 13)


def ops_classic():
    g = FamilyBuilder("ops_classic", [1, 4, 9, 9])
    c = g.node("Relu", [g.conv("x", 16, 4, 3)])
    lrn = g.node("LRN", [c], size=5, alpha=0.05, beta=0.75, bias=2.0)
    p = g.node("MaxPool", [lrn], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)              # 16 x 4 x 4
    a, b = g.conv(p, 16, 16, 3), g.conv(p, 16, 16, 1)
    gate = g.node("Sigmoid", [g.conv(p, 16, 16, 1)])
    # ONNX Runtime has no integer Sub, Div, Sum or LRN: they stay float, between
    # DequantizeLinear and the QuantizeLinear of the next quantized operator, and in the
    # QOperator model whatever follows them until then (float regions).
    t = g.conv(g.node("Sub", [a, b]), 16, 16, 1)
    u = g.conv(g.node("Div", [a, gate]), 16, 16, 1)
    mean = g.const((RNG.standard_normal((16, 1, 1)) * 0.2).astype(np.float32), "mean")
    std = g.const((0.5 + RNG.random((16, 1, 1))).astype(np.float32), "std")
    norm = g.node("Div", [g.node("Sub", [b, mean]), std])
    s = g.node("Sum", [t, u, norm, p])
    flat = g.node("Flatten", [g.node("GlobalAveragePool", [s])], axis=1)
    w = g.const((RNG.standard_normal((10, 16)) * 0.3).astype(np.float32), "fc_w")
    fc = g.node("Gemm", [flat, w, g.const((RNG.standard_normal(10) * 0.1).astype(np.float32), "fc_b")], transB=1)
    y = g.node("Softmax", [fc], axis=-1)
    return g.model(y, [1, 10], 13)


def ops_opset9():
    """Opset 9 as old PyTorch exports: ConstantOfShape weights, a Shape chain, Dropout."""
    g = FamilyBuilder("ops_opset9", [1, 4, 8, 8])
    padded = g.node("Pad", ["x"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0, mode="constant")
    c = g.node("Conv", [padded, g.const(conv_weights(8, 4, 3), "w")], kernel_shape=[3, 3])
    ones = g.node("ConstantOfShape", [g.const(np.array([8], dtype=np.int64), "shape")],
                  value=numpy_helper.from_array(np.array([0.25], dtype=np.float32)))
    shifted = g.node("Add", [c, g.node("Unsqueeze", [g.node("Unsqueeze", [ones], axes=[1])], axes=[2])])
    act = g.node("Clip", [shifted], min=0.0, max=6.0)
    drop = g.node("Dropout", [act], ratio=0.5)
    batch = g.node("Gather", [g.node("Shape", [drop]), g.const(np.array(0, dtype=np.int64), "zero")], axis=0)
    target = g.node("Concat", [g.node("Unsqueeze", [batch], axes=[0]), g.const(np.array([-1], dtype=np.int64), "rest")], axis=0)
    flat = g.node("Reshape", [drop, target])
    w = g.const((RNG.standard_normal((10, 512)) * 0.05).astype(np.float32), "fc_w")
    y = g.node("Gemm", [flat, w, g.const((RNG.standard_normal(10) * 0.1).astype(np.float32), "fc_b")], transB=1)
    return g.model(y, [1, 10], 9)


def families():
    # A seed of their own: the same files whether run alone or after main().
    global RNG
    RNG = np.random.default_rng(20261207)
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    for build in [ops_mobile, ops_shuffle, ops_classic]:
        model = build()
        name = model.graph.name
        fpath = os.path.join(OUT, f"{name}.onnx")
        onnx.save(model, fpath)
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        calib = RNG.standard_normal([8] + shape[1:]).astype(np.float32)
        x = RNG.standard_normal(shape).astype(np.float32)
        np.save(os.path.join(OUT, f"{name}_input.npy"), x)
        np.save(os.path.join(OUT, f"{name}_float_out.npy"), run(fpath, x))
        with tempfile.TemporaryDirectory() as tmp:
            pre = os.path.join(tmp, "pre.onnx")
            # Without graph optimization, which would rewrite HardSwish as HardSigmoid and Mul.
            quant_pre_process(fpath, pre, skip_optimization=True, skip_symbolic_shape=True)
            quantize_both(pre, name, calib, x)
    model = ops_opset9()
    fpath = os.path.join(OUT, "ops_opset9.onnx")
    onnx.save(model, fpath)
    calib = RNG.standard_normal([8, 4, 8, 8]).astype(np.float32)
    x = RNG.standard_normal([1, 4, 8, 8]).astype(np.float32)
    for tag, arr in [("calib", calib), ("input", x), ("float_out", run(fpath, x))]:
        np.save(os.path.join(OUT, f"ops_opset9_{tag}.npy"), arr)
    with tempfile.TemporaryDirectory() as tmp:
        q = os.path.join(tmp, "q.onnx")
        subprocess.run([os.path.join(root, "target", "release", "systole"), "quantize", "--model", fpath, "--calibrate",
                        os.path.join(OUT, "ops_opset9_calib.npy"), "--out", q], check=True)
        onnx.checker.check_model(onnx.load(q))
        np.save(os.path.join(OUT, "ops_opset9_systole_out.npy"), run(q, x))


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["families"]:
        families()
    else:
        main()
        systole_quantized()
        families()
