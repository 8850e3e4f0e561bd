"""The CPU rewrites of exported graphs keep the function and leave no slow operator behind."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (dev extra) builds the test graphs")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from faceguard.training.cpu_graph import (  # noqa: E402
    banded_matrix,
    kernel_from_band,
    largest_difference,
    optimise_file,
    optimise_for_cpu,
)
from faceguard.vision.onnx_model import default_model_path  # noqa: E402

RNG = np.random.default_rng(7)
CHANNELS = 16


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.normal(0, 0.5, shape).astype(np.float32), name)


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
           input_shape: list[int | str], output_shape: list[int | str]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv_prelu_gemm() -> onnx.ModelProto:
    """Conv -> PRelu (4-d, slope C x 1 x 1) -> flatten -> Gemm -> PRelu (2-d, slope C)."""
    inits = [_weight("w", CHANNELS, 3, 3, 3), _weight("b", CHANNELS),
             numpy_helper.from_array(RNG.uniform(0, 0.5, (CHANNELS, 1, 1)).astype(np.float32),
                                     "a4"),
             _weight("g", 8, CHANNELS * 6 * 6),
             numpy_helper.from_array(RNG.uniform(0, 0.5, 8).astype(np.float32), "a2")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("PRelu", ["c", "a4"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "g"], ["h"], transB=1),
             helper.make_node("PRelu", ["h", "a2"], ["y"])]
    return _model(nodes, inits, ["batch", 3, 8, 8], ["batch", 8])


def _legacy_prelu() -> onnx.ModelProto:
    """The Relu/Neg/Relu/Mul/Sub form the exporter wrote before."""
    inits = [_weight("w", CHANNELS, 3, 3, 3),
             numpy_helper.from_array(RNG.uniform(0, 0.5, (CHANNELS, 1, 1)).astype(np.float32),
                                     "a")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["pos"]),
             helper.make_node("Neg", ["c"], ["negx"]),
             helper.make_node("Relu", ["negx"], ["neg"]),
             helper.make_node("Mul", ["neg", "a"], ["scaled"]),
             helper.make_node("Sub", ["pos", "scaled"], ["y"])]
    return _model(nodes, inits, [2, 3, 10, 10], [2, CHANNELS, 8, 8])


def _eca(kernel: np.ndarray) -> onnx.ModelProto:
    """Conv then an ECA block as the PyTorch exporter writes it."""
    inits = [_weight("w", CHANNELS, 3, 3, 3),
             numpy_helper.from_array(kernel.reshape(1, 1, -1).astype(np.float32), "k")]
    squeeze_axes = helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(
        np.array([3], np.int64)))
    unsqueeze_axes = helper.make_node("Constant", [], ["axes2"], value=numpy_helper.from_array(
        np.array([-1], np.int64)))
    pad = (kernel.size - 1) // 2
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("ReduceMean", ["c"], ["m"], axes=[2, 3], keepdims=1,
                              name="/eca/ReduceMean"),
             squeeze_axes,
             helper.make_node("Squeeze", ["m", "axes"], ["s"]),
             helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["t", "k"], ["e"], kernel_shape=[kernel.size],
                              pads=[pad, pad]),
             helper.make_node("Sigmoid", ["e"], ["g"]),
             helper.make_node("Transpose", ["g"], ["t2"], perm=[0, 2, 1]),
             unsqueeze_axes,
             helper.make_node("Unsqueeze", ["t2", "axes2"], ["u"]),
             helper.make_node("Mul", ["c", "u"], ["y"])]
    return _model(nodes, inits, ["batch", 3, 9, 9], ["batch", CHANNELS, 7, 7])


def _rewritten(model: onnx.ModelProto) -> tuple[bytes, bytes, onnx.ModelProto]:
    before = model.SerializeToString()
    copy = onnx.load_from_string(before)
    optimise_for_cpu(copy)
    return before, copy.SerializeToString(), copy


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def test_prelu_becomes_relu_and_channel_scalings_with_the_same_outputs() -> None:
    before, after, model = _rewritten(_conv_prelu_gemm())
    assert "PRelu" not in _ops(model)
    names = [node.name for node in model.graph.node]
    assert {"prelu0/slope", "prelu0/rest", "prelu1/slope", "prelu1/rest"} <= set(names)
    kinds = {node.name: node.op_type for node in model.graph.node}
    assert kinds["prelu0/slope"] == "Conv"  # 4-d: a depthwise 1x1 convolution
    assert kinds["prelu1/slope"] == "Mul"  # 2-d: a plain product
    assert largest_difference(before, after) < 1e-5
    # negative inputs are where PReLU's slope matters: make sure there are some
    negative = {"x": -np.abs(RNG.normal(0, 1, (2, 3, 8, 8))).astype(np.float32)}
    assert largest_difference(before, after, negative) < 1e-5


def test_the_older_relu_neg_form_is_rewritten_too() -> None:
    before, after, model = _rewritten(_legacy_prelu())
    assert "Neg" not in _ops(model) and "Sub" not in _ops(model)
    assert largest_difference(before, after) < 1e-5
    unused = {t.name for t in model.graph.initializer} - {
        i for n in model.graph.node for i in n.input}
    assert not unused  # the old slope is gone from the file


@pytest.mark.parametrize("taps", [3, 5])
def test_eca_becomes_pooling_and_a_banded_convolution(taps: int) -> None:
    kernel = RNG.normal(0, 1, taps).astype(np.float32)
    before, after, model = _rewritten(_eca(kernel))
    assert _ops(model) == ["Conv", "GlobalAveragePool", "Conv", "Sigmoid", "Mul"]
    assert largest_difference(before, after) < 1e-5
    band = next(t for t in model.graph.initializer if t.name == "eca0/band_weight")
    assert np.array_equal(kernel_from_band(numpy_helper.to_array(band)[:, :, 0, 0]), kernel)


def test_banded_matrix_is_the_zero_padded_cross_correlation() -> None:
    kernel = np.array([1.0, 2.0, 3.0], np.float32)
    values = np.arange(1.0, 6.0, dtype=np.float32)
    expected = np.correlate(np.pad(values, 1), kernel, mode="valid")
    assert np.allclose(banded_matrix(kernel, 5) @ values, expected)
    broken = banded_matrix(kernel, 5)
    broken[0, 4] = 1.0
    with pytest.raises(ValueError, match="not the banded matrix"):
        kernel_from_band(broken)


def test_optimise_file_rewrites_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "net.onnx"
    original = _conv_prelu_gemm()
    path.write_bytes(original.SerializeToString())
    counts = optimise_file(path)
    assert (counts.prelu, counts.eca) == (2, 0)
    assert "PRelu" not in _ops(onnx.load(str(path)))
    assert largest_difference(original.SerializeToString(), path.read_bytes()) < 1e-5


@pytest.mark.parametrize("name", ["lite_mobilefacenet_96.onnx", "mtcnn_pnet.onnx",
                                  "mtcnn_rnet.onnx", "mtcnn_onet.onnx"])
def test_shipped_networks_are_in_the_cpu_form(name: str) -> None:
    model = onnx.load(str(default_model_path(name)))
    ops = _ops(model)
    assert "PRelu" not in ops and "Neg" not in ops and "ReduceMean" not in ops
    assert optimise_for_cpu(model).prelu == 0  # nothing left to rewrite


def test_the_embedder_weights_read_back_from_the_cpu_form() -> None:
    pytest.importorskip("torch", reason="the student reader needs the train extra (torch)")
    from faceguard.training.onnx_student import model_weights

    graph = onnx.load(str(default_model_path("lite_mobilefacenet_96.onnx"))).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs, slopes = model_weights(graph, tensors)
    eca = [weight for name, weight, _ in convs if name.endswith("/band")]
    assert len(slopes) == 3 and len(eca) == 4
    assert all(w.shape[:2] == (1, 1) and w.shape[2] % 2 == 1 for w in eca)


def test_a_damaged_file_is_refused_and_left_as_it_was(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from faceguard.training.cpu_graph import main

    path = tmp_path / "damaged.onnx"
    garbage = bytes(range(256)) * 4
    path.write_bytes(garbage)
    with pytest.raises(ValueError, match="is not an ONNX model"):
        optimise_file(path)
    assert main([str(path)]) == 1
    assert path.read_bytes() == garbage


def test_a_slope_shared_through_identity_is_rewritten() -> None:
    """torch's exporter shares one initializer between PReLUs with equal slopes (a fresh
    model's 0.25) and reads it through an Identity node: both are rewritten."""
    slope = numpy_helper.from_array(np.full((CHANNELS, 1, 1), 0.25, np.float32), "slope")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "slope"], ["p"]),
             helper.make_node("Identity", ["slope"], ["slope_alias"]),
             helper.make_node("PRelu", ["p", "slope_alias"], ["y"])]
    before, after, model = _rewritten(_model(nodes, [_weight("w", CHANNELS, 3, 3, 3), slope],
                                             ["N", 3, 8, 8], ["N", CHANNELS, 8, 8]))
    assert "PRelu" not in _ops(model) and "Identity" not in _ops(model)
    negative = {"x": -np.abs(RNG.normal(0, 1, (2, 3, 8, 8))).astype(np.float32)}
    assert largest_difference(before, after, negative) < 1e-5
