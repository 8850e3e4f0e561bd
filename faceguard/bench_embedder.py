"""`faceguard bench`'s peak section: the embedder's float32 throughput (FLOPs counted from its
ONNX graph) against this CPU's one-thread matrix product."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceguard.bench_timing import paired_best_ms
from faceguard.library.half_scores import score_kernel
from faceguard.vision.embedder import Embedder


def _embedder_flops(path: Path) -> int | None:
    """Multiply-adds x 2 of one face through an ONNX network (Conv, Gemm, MatMul), counted
    from its graph with onnx's shape inference; None without the onnx package."""
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        return None
    model = onnx.load(str(path))
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(model.graph.value_info) + list(model.graph.input) + \
            list(model.graph.output):
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            kernel = weights.get(node.input[1]) or tuple(shapes.get(node.input[1], ()))
            out = shapes.get(node.output[0])
            if not kernel or not out:
                continue
            # weight (Cout, Cin/group, kh, kw); output (N, Cout, H, W)
            total += 2 * int(np.prod(out)) * int(np.prod(kernel[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            left = shapes.get(node.input[0]) or list(weights.get(node.input[0], ()))
            out = shapes.get(node.output[0])
            if left and out:
                total += 2 * int(np.prod(out)) * int(left[-1])
    return total


def embedder_peak_share(ctx: Any, repeats: int) -> dict[str, Any]:
    """The embedder's float32 throughput against this CPU's one-thread float32 matrix
    product (512x512 matrices, the faster of NumPy's BLAS and onnxruntime's MLAS; the
    fastest of alternating runs)."""
    embedder: Embedder = ctx.engine.embedder
    size = 512
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size), dtype=np.float32)
    right = rng.standard_normal((size, size), dtype=np.float32)
    crop = np.zeros((96, 96, 3), np.uint8)
    # Fastest of alternating runs: a peak is what the machine can do when nobody interrupts.
    matmul_ms, embed_ms = paired_best_ms(lambda: left @ right, lambda: embedder.embed(crop),
                                         max(20, repeats * 2))
    engines = {"numpy": matmul_ms}
    kernel = score_kernel()  # onnxruntime's own matrix product (MLAS), as the embedder uses
    if kernel is not None:
        half_left = left.astype(np.float16)
        engines["onnxruntime"], _ = paired_best_ms(
            lambda: kernel.run({"templates": half_left, "queries": right}), lambda: None,
            max(20, repeats * 2))
    matmul_ms = min(engines.values())
    peak = 2 * size ** 3 / (matmul_ms / 1000.0)
    flops = _embedder_flops(embedder.path)
    result: dict[str, Any] = {
        "matmul_gflops": round(peak / 1e9, 2), "embed_ms": embed_ms,
        "matmul_gflops_by_engine": {name: round(2 * size ** 3 / (ms / 1000.0) / 1e9, 2)
                                    for name, ms in engines.items()}}
    if flops is None:
        result["note"] = "onnx is not installed: the embedder's FLOPs were not counted"
        return result
    achieved = flops / (embed_ms / 1000.0)
    result.update({"embedder_mflop": round(flops / 1e6, 1),
                   "embedder_gflops": round(achieved / 1e9, 2),
                   "share_of_peak": round(achieved / peak, 3)})
    return result
