"""Convert the two Silent-Face anti-spoofing networks (MiniFASNet) into ONNX files.

The networks are rebuilt here from our own module definitions and loaded from the upstream
PyTorch state dicts (strict: every tensor must match by name and shape, after removing the
``module.`` prefix that DataParallel left on every key). Each exported graph ends in a
softmax, so the ONNX output ``prob`` (N, 3) is what upstream's predictor computes (class 1 =
live). The export is checked twice: the file must be byte-identical when written again, and
onnxruntime must agree with PyTorch on crops of the sample images (and on random inputs)
to within 1e-4 in every probability.

Usage (needs the ``train`` extra: torch, onnx)::

    python tools/convert_minifasnet.py \\
        --weights ../shared/models/silent-face-anti-spoofing --out resources/models

Weights: Apache License 2.0, Minivision (see resources/models/NOTICE and
resources/models/LIVENESS_MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 17
INPUT_SIZE = 80
NUM_CLASSES = 3
EMBEDDING = 128


class ConvBnPrelu(nn.Module):
    """Bias-free convolution, batch norm, per-channel PReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class ConvBn(nn.Module):
    """Bias-free convolution and batch norm, no activation (a linear bottleneck)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, 1, 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """Channel attention: global mean -> 1x1 conv/BN/ReLU -> 1x1 conv/BN/sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.relu(self.bn1(self.fc1(w)))
        return x * torch.sigmoid(self.bn2(self.fc2(w)))


class Bottleneck(nn.Module):
    """Inverted bottleneck: 1x1 expand, 3x3 depthwise (stride 1 or 2), 1x1 project.

    With ``residual`` the input is added back (after the optional squeeze-excitation).
    """

    def __init__(self, c_in: int, expand: int, c_out: int, *, stride: int = 1,
                 residual: bool = False, squeeze: bool = False) -> None:
        super().__init__()
        self.conv = ConvBnPrelu(c_in, expand)
        self.conv_dw = ConvBnPrelu(expand, expand, 3, stride, groups=expand)
        self.project = ConvBn(expand, c_out)
        self.residual = residual
        self.se_module = SqueezeExcite(c_out) if squeeze else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stage(nn.Module):
    """Residual bottlenecks at a constant width; SE (if any) on the last one only."""

    def __init__(self, width: int, expansions: tuple[int, ...], squeeze: bool) -> None:
        super().__init__()
        last = len(expansions) - 1
        self.model = nn.Sequential(*[
            Bottleneck(width, e, width, residual=True, squeeze=squeeze and i == last)
            for i, e in enumerate(expansions)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class Widths:
    """Pruned channel counts of one MiniFASNet variant (the expansion width of each block)."""

    down2: int                 # expansion of the stride-2 block 32 -> 64
    stage3: tuple[int, ...]    # 4 residual blocks at 64 channels
    down3: int                 # stride-2 block 64 -> 128
    stage4: tuple[int, ...]    # 6 residual blocks at 128 channels
    down4: int                 # stride-2 block 128 -> 128
    stage5: tuple[int, ...]    # 2 residual blocks at 128 channels


V1_WIDTHS = Widths(103, (13, 26, 13, 52), 231, (154, 52, 26, 52, 26, 26), 308, (26, 26))
V2_WIDTHS = Widths(103, (13, 13, 13, 13), 231, (231, 52, 26, 77, 26, 26), 308, (26, 26))


class MiniFasNet(nn.Module):
    """MiniFASNet for 80x80 BGR crops with raw 0..255 values; returns softmax (N, 3)."""

    def __init__(self, widths: Widths, *, squeeze: bool) -> None:
        super().__init__()
        self.conv1 = ConvBnPrelu(3, 32, 3, 2)
        self.conv2_dw = ConvBnPrelu(32, 32, 3, 1, groups=32)
        self.conv_23 = Bottleneck(32, widths.down2, 64, stride=2)
        self.conv_3 = Stage(64, widths.stage3, squeeze)
        self.conv_34 = Bottleneck(64, widths.down3, 128, stride=2)
        self.conv_4 = Stage(128, widths.stage4, squeeze)
        self.conv_45 = Bottleneck(128, widths.down4, 128, stride=2)
        self.conv_5 = Stage(128, widths.stage5, squeeze)
        self.conv_6_sep = ConvBnPrelu(128, 512)
        # 80 / 16 = 5: a 5x5 depthwise "global" convolution reduces 5x5 maps to 1x1
        self.conv_6_dw = ConvBn(512, 512, (INPUT_SIZE + 15) // 16, groups=512)
        self.linear = nn.Linear(512, EMBEDDING, bias=False)
        self.bn = nn.BatchNorm1d(EMBEDDING)
        self.prob = nn.Linear(EMBEDDING, NUM_CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34,
                      self.conv_4, self.conv_45, self.conv_5, self.conv_6_sep,
                      self.conv_6_dw):
            x = stage(x)
        logits = self.prob(self.bn(self.linear(x.flatten(1))))
        return torch.softmax(logits, dim=1)


@dataclass(frozen=True)
class Network:
    """One upstream weight file and what we make of it."""

    weights: str
    onnx: str
    widths: Widths
    squeeze: bool
    scale: float


NETWORKS: dict[str, Network] = {
    "v2_s2.7": Network("2.7_80x80_MiniFASNetV2.pth", "minifasnet_v2_80_s2.7.onnx",
                       V2_WIDTHS, False, 2.7),
    "v1se_s4": Network("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet_v1se_80_s4.onnx",
                       V1_WIDTHS, True, 4.0),
}
SAMPLES = ("image_F1.jpg", "image_F2.jpg", "image_T1.jpg")


def build(spec: Network, weights_dir: Path) -> MiniFasNet:
    """Instantiate one network and load its upstream state dict strictly."""
    net = MiniFasNet(spec.widths, squeeze=spec.squeeze)
    state = torch.load(weights_dir / spec.weights, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net.load_state_dict(state, strict=True)
    return net.eval()


def _export_bytes(net: nn.Module, folder: Path, name: str) -> bytes:
    path = folder / name
    example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        net, (example,), str(path), input_names=["input"], output_names=["prob"],
        dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}},
        opset_version=OPSET, do_constant_folding=True, dynamo=False,
    )
    return path.read_bytes()


def sample_crops(samples_dir: Path, scale: float) -> np.ndarray:
    """(N, 3, 80, 80) float32 BGR crops of the largest face in each sample image."""
    from faceguard.vision.image_io import load_image
    from faceguard.vision.liveness import crop_for_scale, upstream_box
    from faceguard.vision.mtcnn import MtcnnDetector

    detector = MtcnnDetector(min_face=40)
    crops = []
    for name in SAMPLES:
        image = load_image(samples_dir / name)
        faces = detector.detect(image)
        if not faces:
            raise SystemExit(f"no face found in sample {name}")
        face = max(faces, key=lambda f: f.area)
        crop = crop_for_scale(image, upstream_box(face.box), scale)
        crops.append(crop.tensor)
    return np.stack(crops)


def export(key: str, weights_dir: Path, out_dir: Path) -> dict[str, object]:
    """Export one network to ONNX, check reproducibility and agreement with PyTorch."""
    import onnxruntime as ort

    spec = NETWORKS[key]
    net = build(spec, weights_dir)
    with tempfile.TemporaryDirectory() as tmp:
        first = _export_bytes(net, Path(tmp), "a.onnx")
        second = _export_bytes(net, Path(tmp), "b.onnx")
    if first != second:
        raise SystemExit(f"{spec.onnx}: two exports differ; the export is not reproducible")
    path = out_dir / spec.onnx
    path.write_bytes(first)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "samples": sample_crops(weights_dir / "samples", spec.scale),
        "random": (torch.rand(4, 3, INPUT_SIZE, INPUT_SIZE, generator=generator)
                   * 255).numpy(),
    }
    worst: dict[str, float] = {}
    sample_probs: list[list[float]] = []
    for label, batch in inputs.items():
        with torch.no_grad():
            expected = net(torch.from_numpy(batch)).numpy()
        got = session.run(None, {"input": batch})[0]
        worst[label] = float(np.abs(expected - got).max())
        if label == "samples":
            sample_probs = [[round(float(p), 6) for p in row] for row in got]
    if max(worst.values()) > 1e-4:
        raise SystemExit(f"{spec.onnx}: ONNX differs from PyTorch by {worst}")
    digest = hashlib.sha256(first).hexdigest()
    print(f"{path.name}: {len(first)} bytes, reproducible, max |onnx - torch| "
          f"samples {worst['samples']:.2e} random {worst['random']:.2e}, sha256 {digest}")
    return {"file": path.name, "sha256": digest, "bytes": len(first),
            "max_abs_diff_vs_torch": worst,
            "sample_probs": dict(zip(SAMPLES, sample_probs, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path,
                        default=Path("../shared/models/silent-face-anti-spoofing"),
                        help="folder with the two upstream .pth files and samples/")
    parser.add_argument("--out", type=Path, default=Path("resources/models"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    report = {key: export(key, args.weights, args.out) for key in NETWORKS}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
