"""Rewrites that make an exported network run fastest on onnxruntime's CPU kernels.

onnxruntime runs convolutions in a blocked channel layout (NCHWc) and fuses simple
activations into them. Its PRelu kernel is an unfused broadcast outside that layout, and the
squeeze-transpose-1d-convolution chain an ECA block exports to is too: each costs two layout
conversions besides its own kernel. The rewrites below give the same function in operators
that stay in the blocked layout:

* ``PRelu(x, a) = a * x + (1 - a) * relu(x)``: a Relu, two per-channel scalings (depthwise
  1x1 convolutions on 4-d tensors, ``Mul`` elsewhere) and an ``Add``. The Relu/Neg/Relu/Mul/Sub
  form of earlier exports is recognised and rewritten the same way.
* ECA (mean over H and W, a 1-d convolution across channels, sigmoid, scale) becomes
  ``GlobalAveragePool``, a 1x1 convolution whose C x C weight is the banded matrix of the 1-d
  kernel, ``Sigmoid`` and ``Mul``.

The rewritten nodes are named ``prelu<k>/slope``, ``prelu<k>/rest`` and ``eca<k>/band`` so that
:mod:`faceguard.training.onnx_student` can read the weights back. Run::

    python -m faceguard.training.cpu_graph MODEL.onnx [MODEL.onnx ...]

to rewrite files in place; each is checked first to compute the same outputs as before on
random inputs (largest absolute difference below :data:`TOLERANCE`).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-4
SAMPLE_BATCH = 3
SAMPLE_SIDE = 64
ECA_CHAIN = ("ReduceMean", "Squeeze", "Transpose", "Conv", "Sigmoid", "Transpose", "Unsqueeze",
             "Mul")
LEGACY_PRELU = ("Relu", "Neg", "Relu", "Mul", "Sub")


@dataclass
class RewriteCounts:
    """How many PReLU and ECA blocks a rewrite replaced."""

    prelu: int = 0
    eca: int = 0


def optimise_for_cpu(model: Any) -> RewriteCounts:
    """Rewrite an ``onnx.ModelProto`` in place (see the module docstring); checks the result."""
    import onnx

    counts = RewriteCounts()
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    _unalias_initializers(graph, weights)
    shapes = _shapes(model)  # of the graph as exported, before any rewrite
    # Constants have no inputs: set aside, they go first again if anything still reads them.
    constants = [n for n in graph.node if n.op_type == "Constant"]
    nodes = [n for n in graph.node if n.op_type != "Constant"]
    out: list[Any] = []
    index = 0
    while index < len(nodes):
        node = nodes[index]
        if node.op_type == "PRelu":
            x, slope_name = node.input
            out += _prelu_nodes(graph, counts.prelu, x, _array(weights[slope_name]),
                                node.output[0], _rank(shapes, x))
            counts.prelu += 1
            index += 1
        elif _is_legacy_prelu(nodes, index):
            x = node.input[0]
            slope = _array(weights[nodes[index + 3].input[1]])
            out += _prelu_nodes(graph, counts.prelu, x, slope, nodes[index + 4].output[0],
                                _rank(shapes, x))
            counts.prelu += 1
            index += len(LEGACY_PRELU)
        elif _is_eca_chain(nodes, index):
            chain = nodes[index:index + len(ECA_CHAIN)]
            kernel = _array(weights[chain[3].input[1]]).reshape(-1)
            channels = _channels(shapes, chain[0].input[0])
            out += _eca_nodes(graph, counts.eca, chain[0].input[0], kernel, channels,
                              chain[-1].output[0])
            counts.eca += 1
            index += len(ECA_CHAIN)
        else:
            out.append(node)
            index += 1
    used = {name for node in out for name in node.input}
    del graph.node[:]
    graph.node.extend([n for n in constants if n.output[0] in used] + out)
    for tensor in list(graph.initializer):
        if tensor.name not in used:
            graph.initializer.remove(tensor)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return counts


def _unalias_initializers(graph: Any, weights: dict[str, Any]) -> None:
    """Give each Identity of an initializer its own copy: the exporter shares one tensor
    between layers whose weights are equal (e.g. two fresh PReLUs' 0.25 slopes)."""
    from onnx import TensorProto

    for node in [n for n in graph.node if n.op_type == "Identity" and n.input[0] in weights]:
        copy = TensorProto()
        copy.CopyFrom(weights[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        weights[copy.name] = copy
        graph.node.remove(node)


def _array(tensor: Any) -> np.ndarray:
    from onnx import numpy_helper

    return np.asarray(numpy_helper.to_array(tensor), dtype=np.float32)


def _shapes(model: Any) -> dict[str, list[int | None]]:
    """The shape of every tensor shape inference can tell (None: a dynamic axis)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input)
    return {v.name: [int(d.dim_value) if d.HasField("dim_value") else None
                     for d in v.type.tensor_type.shape.dim]
            for v in values if v.type.tensor_type.HasField("shape")}


def _rank(shapes: dict[str, list[int | None]], name: str) -> int | None:
    return len(shapes[name]) if name in shapes else None


def _channels(shapes: dict[str, list[int | None]], name: str) -> int:
    shape = shapes.get(name, [])
    if len(shape) < 2 or shape[1] is None:
        raise ValueError(f"the channel count of {name} is not known from shape inference")
    return int(shape[1])


def _is_legacy_prelu(nodes: Sequence[Any], index: int) -> bool:
    ops = tuple(n.op_type for n in nodes[index:index + len(LEGACY_PRELU)])
    if ops != LEGACY_PRELU:
        return False
    relu, neg, relu_neg, mul, sub = nodes[index:index + len(LEGACY_PRELU)]
    x = relu.input[0]
    return (neg.input[0] == x and relu_neg.input[0] == neg.output[0]
            and mul.input[0] == relu_neg.output[0]
            and list(sub.input) == [relu.output[0], mul.output[0]])


def _is_eca_chain(nodes: Sequence[Any], index: int) -> bool:
    chain = nodes[index:index + len(ECA_CHAIN)]
    if tuple(n.op_type for n in chain) != ECA_CHAIN:
        return False
    for previous, node in itertools.pairwise(chain):
        if node.input[0] != previous.output[0] and node.op_type != "Mul":
            return False
    mul = chain[-1]
    return list(mul.input) == [chain[0].input[0], chain[-2].output[0]]


def _prelu_nodes(graph: Any, k: int, x: str, slope: np.ndarray, y: str,
                 rank: int | None) -> list[Any]:
    from onnx import helper, numpy_helper

    tag = f"prelu{k}"
    channels = int(slope.size)
    as_convolution = rank == 4 and slope.shape in ((channels, 1, 1), (1, channels, 1, 1))
    shape: tuple[int, ...] = (channels, 1, 1, 1) if as_convolution else slope.shape
    graph.initializer.extend([
        numpy_helper.from_array(slope.reshape(shape), f"{tag}/slope_weight"),
        numpy_helper.from_array((1.0 - slope).reshape(shape), f"{tag}/rest_weight")])
    relu = helper.make_node("Relu", [x], [f"{tag}/relu"], name=f"{tag}/relu")
    if as_convolution:
        scaled = [helper.make_node("Conv", [source, f"{tag}/{part}_weight"], [f"{tag}/{part}"],
                                   name=f"{tag}/{part}", group=channels, kernel_shape=[1, 1])
                  for source, part in ((x, "slope"), (f"{tag}/relu", "rest"))]
    else:
        scaled = [helper.make_node("Mul", [source, f"{tag}/{part}_weight"], [f"{tag}/{part}"],
                                   name=f"{tag}/{part}")
                  for source, part in ((x, "slope"), (f"{tag}/relu", "rest"))]
    add = helper.make_node("Add", [f"{tag}/slope", f"{tag}/rest"], [y], name=f"{tag}/add")
    return [relu, *scaled, add]


def banded_matrix(kernel: np.ndarray, channels: int) -> np.ndarray:
    """The C x C matrix of a zero-padded 1-d convolution across channels (odd kernel)."""
    size = int(kernel.size)
    pad = (size - 1) // 2
    band = np.zeros((channels, channels), np.float32)
    for out_channel in range(channels):
        for tap in range(size):
            source = out_channel + tap - pad
            if 0 <= source < channels:
                band[out_channel, source] = kernel[tap]
    return band


def kernel_from_band(band: np.ndarray) -> np.ndarray:
    """The odd 1-d kernel a banded matrix was made from (checks it is one)."""
    channels = band.shape[0]
    middle = channels // 2
    nonzero = np.flatnonzero(band[middle])
    if not len(nonzero):
        raise ValueError("the band matrix has an empty middle row")
    pad = max(middle - int(nonzero[0]), int(nonzero[-1]) - middle)
    kernel = band[middle, middle - pad:middle + pad + 1].copy()
    if not np.array_equal(banded_matrix(kernel, channels), band):
        raise ValueError("the ECA weight is not the banded matrix of a 1-d kernel")
    return kernel


def _eca_nodes(graph: Any, k: int, x: str, kernel: np.ndarray, channels: int,
               y: str) -> list[Any]:
    from onnx import helper, numpy_helper

    tag = f"eca{k}"
    band = banded_matrix(kernel, channels).reshape(channels, channels, 1, 1)
    graph.initializer.append(numpy_helper.from_array(band, f"{tag}/band_weight"))
    return [
        helper.make_node("GlobalAveragePool", [x], [f"{tag}/mean"], name=f"{tag}/mean"),
        helper.make_node("Conv", [f"{tag}/mean", f"{tag}/band_weight"], [f"{tag}/band"],
                         name=f"{tag}/band", kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", [f"{tag}/band"], [f"{tag}/gate"], name=f"{tag}/gate"),
        helper.make_node("Mul", [x, f"{tag}/gate"], [y], name=f"{tag}/scale"),
    ]


def sample_inputs(model_bytes: bytes, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs in [-1, 1] for every graph input (dynamic axes: batch 3, others 64)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) else (SAMPLE_BATCH if axis == 0 else SAMPLE_SIDE)
                 for axis, d in enumerate(value.shape)]
        feeds[value.name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return feeds


def largest_difference(a_bytes: bytes, b_bytes: bytes,
                       feeds: dict[str, np.ndarray] | None = None) -> float:
    """Largest absolute difference between two models' outputs on the same inputs."""
    import onnxruntime as ort

    feeds = feeds if feeds is not None else sample_inputs(a_bytes)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    outputs = [ort.InferenceSession(b, options, providers=["CPUExecutionProvider"])
               .run(None, feeds) for b in (a_bytes, b_bytes)]
    return max(float(np.abs(x - y).max()) for x, y in zip(*outputs, strict=True))


def optimise_file(path: Path, feeds: dict[str, np.ndarray] | None = None) -> RewriteCounts:
    """Rewrite one ONNX file in place, after checking the rewrite keeps its outputs."""
    import onnx

    before = path.read_bytes()
    try:
        model = onnx.load_from_string(before)
    except Exception as error:  # protobuf's DecodeError and onnx's own parse errors
        raise ValueError(f"{path} is not an ONNX model ({error})") from error
    counts = optimise_for_cpu(model)
    after = model.SerializeToString()
    worst = largest_difference(before, after, feeds)
    if worst >= TOLERANCE:
        raise ValueError(f"{path}: the rewritten graph differs by {worst:.3g}")
    path.write_bytes(after)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the named files in place."""
    parser = argparse.ArgumentParser(prog="python -m faceguard.training.cpu_graph",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="ONNX files to rewrite in place")
    args = parser.parse_args(argv)
    for path in args.models:
        try:
            counts = optimise_file(path)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{path}: {counts.prelu} PReLU and {counts.eca} ECA blocks rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
