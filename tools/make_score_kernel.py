"""Write resources/models/half_scores.onnx: float16 templates x float32 queries -> float32.

The matcher stores its templates in float16 (half the memory, half the memory traffic of a
search). NumPy widens float16 slowly (no SIMD cast, ~0.7 G values/s here), onnxruntime's
Cast uses the CPU's F16C instructions; so a search runs this two-node graph (Cast, MatMul)
on blocks of rows that fit the cache. Products are accumulated in float32.

Usage: python tools/make_score_kernel.py [--check]
It prints the file's SHA-256 for resources/models/manifest.json and SEARCH_KERNEL_CARD.md;
the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parents[1] / "resources" / "models" / "half_scores.onnx"


def build() -> bytes:
    """The serialised model: inputs templates (n, d) float16, queries (d, q) float32."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["templates"], ["widened"], to=TensorProto.FLOAT),
         helper.make_node("MatMul", ["widened", "queries"], ["scores"])],
        "half_scores",
        [helper.make_tensor_value_info("templates", TensorProto.FLOAT16, ["n", "d"]),
         helper.make_tensor_value_info("queries", TensorProto.FLOAT, ["d", "q"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", "q"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="faceguard-tools")
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only say whether the shipped file is current")
    args = parser.parse_args()
    data = build()
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        current = OUT.is_file() and OUT.read_bytes() == data
        print(f"{OUT.name}: {'current' if current else 'OUT OF DATE'} ({digest})")
        return 0 if current else 1
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes), sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
