"""Make an int8 copy of the product embedder, calibrated on UTKFace crops.

Static quantisation with onnxruntime.quantization: weights int8 per output channel, activations
uint8 with ranges calibrated on aligned UTKFace faces (training data; LFW is for evaluation only),
QDQ format. Depthwise convolutions (group == channels) stay float32 with ``--keep-depthwise``
(int8 depthwise kernels gain little on x86 and lose the most accuracy).

Usage:
    python tools/quantize_embedder.py --utkface ../shared/datasets/utkface --faces 300 \
        --out /tmp/lite_mobilefacenet_96_int8.onnx [--keep-depthwise]
It prints both models' time for one face (one thread, timed in alternation) and how close the
int8 vectors stay to the float32 ones. Accuracy: FACEGUARD_EMBEDDER=/tmp/...onnx
FACEGUARD_EMBEDDER_SHA256=<sha> faceguard eval lfw.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def calibration_crops(utkface: Path, faces: int) -> np.ndarray:
    """Aligned 96x96 crops of every k-th UTKFace image, as the embedder's input tensors."""
    from faceguard.vision.engine import FaceEngine
    from faceguard.vision.image_io import load_image

    images = sorted((utkface / "images").glob("*.jpg")) or sorted(utkface.rglob("*.jpg"))
    if not images:
        raise SystemExit(f"no UTKFace images under {utkface}")
    step = max(1, len(images) // (faces * 2))
    engine = FaceEngine.load(min_face=40)
    crops = []
    for path in images[::step]:
        observation = engine.analyze(load_image(path), embed=False)
        if observation:
            crops.append(observation[0].crop)
        if len(crops) >= faces:
            break
    batch = (np.stack(crops).astype(np.float32) - 127.5) / 128.0
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class _Reader:
    """onnxruntime's CalibrationDataReader over the crops, 16 at a time."""

    def __init__(self, tensors: np.ndarray) -> None:
        self._batches: Iterator[np.ndarray] = iter(np.array_split(tensors, max(1, len(tensors)
                                                                              // 16)))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}


def depthwise_nodes(path: Path) -> list[str]:
    """Names of the Conv nodes whose group equals their input channels."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        shape = weights.get(node.input[1])
        if group > 1 and shape is not None and shape[1] == 1:
            names.append(node.name)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utkface", type=Path, default=Path("../shared/datasets/utkface"))
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--model", type=Path, default=None, help="float32 embedder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep-depthwise", action="store_true",
                        help="leave depthwise convolutions in float32")
    parser.add_argument("--operator", action="store_true",
                        help="QOperator format (QLinearConv nodes) instead of QDQ")
    args = parser.parse_args()

    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from faceguard.settings import DEFAULT_MODEL_FILE
    from faceguard.vision.onnx_model import default_model_path

    source = args.model or default_model_path(DEFAULT_MODEL_FILE)
    tensors = calibration_crops(args.utkface, args.faces)
    print(f"calibrating on {len(tensors)} UTKFace crops", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        exclude = depthwise_nodes(prepared) if args.keep_depthwise else []
        fmt = QuantFormat.QOperator if args.operator else QuantFormat.QDQ
        quantize_static(str(prepared), str(args.out), _Reader(tensors),
                        quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=exclude)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(exclude)} depthwise "
          f"convolutions kept in float32), sha256 {digest}")
    compare(source, args.out, digest, tensors)
    return 0


def compare(source: Path, quantised: Path, digest: str, tensors: np.ndarray) -> None:
    """One face through each model, timed in alternation (one thread), and how close the
    int8 vectors stay to the float32 ones on the calibration faces."""
    from faceguard.bench_timing import paired_best_ms, paired_median_ms
    from faceguard.vision.embedder import Embedder

    exact = Embedder(source)
    fast = Embedder(quantised, sha256=digest)
    crops = np.clip(tensors.transpose(0, 2, 3, 1) * 128.0 + 127.5, 0, 255).astype(np.uint8)
    one = crops[0]
    median = paired_median_ms(lambda: exact.embed(one), lambda: fast.embed(one), 100)
    best = paired_best_ms(lambda: exact.embed(one), lambda: fast.embed(one), 100)
    cosines = np.sum(exact.embed(crops) * fast.embed(crops), axis=1)
    print(f"one face, one thread: float32 {median[0]:.3f} ms, int8 {median[1]:.3f} ms "
          f"(medians; fastest {best[0]:.3f} / {best[1]:.3f} ms); int8 is "
          f"{median[0] / median[1]:.2f}x as fast")
    print(f"cosine(float32, int8) over {len(crops)} faces: mean {cosines.mean():.4f}, "
          f"min {cosines.min():.4f}")


if __name__ == "__main__":
    sys.exit(main())
