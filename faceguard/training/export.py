"""Export a distilled LiteMobileFaceNet checkpoint to ONNX and check it with onnxruntime.

Run::

    python -m faceguard.training.export --checkpoint CKPT_DIR/best.pt \\
        --out resources/models/lite_mobilefacenet_96.onnx [--int8 [--calibration DIR]]

The graph: input ``input`` float32 (batch, 3, 96, 96) RGB, (x - 127.5) / 128; output
``embedding`` float32 (batch, 128), not normalised. Opset 17, TorchScript-based exporter
(``dynamo=False``: the dynamo exporter needs onnxscript), PReLU and ECA rewritten for
onnxruntime's CPU kernels (:mod:`faceguard.training.cpu_graph`). ``--int8`` also writes
``<out stem>_int8.onnx``: static QDQ quantisation calibrated on ``DIR``'s crops when
``--calibration`` is given, dynamic quantisation otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceguard.training.checkpoints import build_model_from_checkpoint, load_checkpoint
from faceguard.training.cpu_graph import optimise_for_cpu
from faceguard.training.distill_data import DataError, load_crops
from faceguard.training.model import INPUT_SIZE
from faceguard.vision.onnx_model import file_sha256

OPSET = 17
TOLERANCE = 1e-4


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a directory holding best.pt (else last.pt)."""
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return path / name
        raise FileNotFoundError(f"{path} holds neither best.pt nor last.pt")
    return path


def export_onnx(model: torch.nn.Module, out: Path) -> None:
    """Write ``model`` (eval mode, CPU) to ``out`` as ONNX with a dynamic batch dimension."""
    model = model.cpu().eval()
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy; it needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(out),
            input_names=["input"],
            output_names=["embedding"],
            opset_version=OPSET,
            dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    model_proto = onnx.load(str(out))
    optimise_for_cpu(model_proto)  # checked against PyTorch by verify_onnx after export
    onnx.save(model_proto, str(out))


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def verify_onnx(
    model: torch.nn.Module, path: Path, batch_sizes: Sequence[int] = (1, 7, 16), seed: int = 0
) -> float:
    """Max abs difference between PyTorch and onnxruntime on random inputs in [-1, 1]."""
    session = _session(path)
    model = model.cpu().eval()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for b in batch_sizes:
        x = rng.uniform(-1.0, 1.0, (b, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (got,) = session.run(["embedding"], {"input": x})
        if got.shape != ref.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


class _CalibrationReader:
    """Feeds normalised crops to onnxruntime's static quantiser, a batch at a time."""

    def __init__(self, crops: np.ndarray, batch_size: int = 32) -> None:
        self.crops = crops
        self.batch_size = batch_size
        self.pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Next calibration batch, or None when done."""
        if self.pos >= len(self.crops):
            return None
        batch = self.crops[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        x = (batch.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0
        return {"input": np.ascontiguousarray(x)}

    def rewind(self) -> None:
        """Start again from the first batch."""
        self.pos = 0


def quantise_int8(
    fp32_path: Path, out: Path, calibration: np.ndarray | None
) -> None:
    """Write an int8 model: static QDQ (per-channel) with calibration crops, else dynamic."""
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(fp32_path), str(prepped))
        if calibration is None:
            quantize_dynamic(str(prepped), str(out), weight_type=QuantType.QInt8)
        else:
            quantize_static(
                str(prepped),
                str(out),
                _CalibrationReader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )


def compare_embeddings(a_path: Path, b_path: Path, crops: np.ndarray) -> float:
    """Mean cosine between two ONNX models' embeddings of ``crops``."""
    x = (crops.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0
    (a,) = _session(a_path).run(["embedding"], {"input": np.ascontiguousarray(x)})
    (b,) = _session(b_path).run(["embedding"], {"input": np.ascontiguousarray(x)})
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).mean())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m faceguard.training.export", description=__doc__.split("\n")[0]
    )
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="best.pt / last.pt, or a checkpoint directory (best.pt preferred)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--int8", action="store_true", help="also write <out stem>_int8.onnx")
    p.add_argument("--calibration", type=Path, default=None,
                   help="data directory with crops.npy / crops_jpg.npz for static int8")
    p.add_argument("--calibration-count", type=int, default=512)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        ckpt_path = resolve_checkpoint(args.checkpoint)
        ckpt = load_checkpoint(ckpt_path)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = build_model_from_checkpoint(ckpt).eval()
    print(f"checkpoint {ckpt_path}: epoch {ckpt['epoch']}, best held-out cosine "
          f"{ckpt.get('best_val_cos', float('nan')):.4f}")
    export_onnx(model, args.out)
    diff = verify_onnx(model, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {size:,} bytes, sha256 {file_sha256(args.out)}")
    print(f"max abs diff PyTorch vs onnxruntime (batches 1, 7, 16): {diff:.3g}")
    if diff >= TOLERANCE:
        print(f"error: difference {diff:.3g} is not below {TOLERANCE}", file=sys.stderr)
        return 1
    if args.int8:
        calib = None
        if args.calibration is not None:
            try:
                crops = load_crops(args.calibration)
            except DataError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            pick = np.random.default_rng(0).permutation(len(crops))[: args.calibration_count]
            calib = crops[np.sort(pick)]
        out8 = args.out.with_name(args.out.stem + "_int8.onnx")
        quantise_int8(args.out, out8, calib)
        print(f"wrote {out8} ({'static QDQ' if calib is not None else 'dynamic'}): "
              f"{out8.stat().st_size:,} bytes, sha256 {file_sha256(out8)}")
        if calib is not None:
            print(f"mean cosine fp32 vs int8 embeddings on the calibration crops: "
                  f"{compare_embeddings(args.out, out8, calib):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
