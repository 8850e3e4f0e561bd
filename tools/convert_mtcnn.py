"""Convert the MTCNN weights shipped in the facenet-pytorch wheel into three ONNX files.

The networks are rebuilt here from our own module definitions and loaded from the wheel's
``pnet.pt``/``rnet.pt``/``onet.pt`` state dicts (strict: every tensor must match by name and
shape). facenet_pytorch itself is never imported (its package import drags in torchvision).

Usage (needs the ``train`` extra: torch, onnx; and ``pip install --no-deps facenet-pytorch``)::

    python tools/convert_mtcnn.py --out resources/models

Weights: MIT licence, Copyright (c) 2019 Timothy Esler (see resources/models/NOTICE).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceguard.training.cpu_graph import optimise_file


class _CaffeFlatten(nn.Module):
    """Flatten NCHW as the original Caffe model did (width-major): permute to N,W,H,C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).flatten(1)


class ProposalNet(nn.Module):
    """MTCNN stage 1 (P-Net): fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return torch.softmax(self.conv4_1(x), dim=1), self.conv4_2(x)


class RefineNet(nn.Module):
    """MTCNN stage 2 (R-Net): 24x24 crops -> face probability and box regression."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.flatten = _CaffeFlatten()
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(self.flatten(x)))
        return torch.softmax(self.dense5_1(x), dim=1), self.dense5_2(x)


class OutputNet(nn.Module):
    """MTCNN stage 3 (O-Net): 48x48 crops -> probability, box regression, 5 landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.flatten = _CaffeFlatten()
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(self.flatten(x)))
        return torch.softmax(self.dense6_1(x), dim=1), self.dense6_2(x), self.dense6_3(x)


# name -> (module class, fixed input size or None for dynamic, output names)
NETWORKS: dict[str, tuple[type[nn.Module], int | None, list[str]]] = {
    "pnet": (ProposalNet, None, ["prob", "reg"]),
    "rnet": (RefineNet, 24, ["prob", "reg"]),
    "onet": (OutputNet, 48, ["prob", "reg", "landmarks"]),
}


def weights_dir() -> Path:
    """Folder of the .pt files inside the installed facenet-pytorch wheel (not imported)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("facenet-pytorch is not installed: pip install --no-deps facenet-pytorch")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def build(name: str) -> nn.Module:
    """Instantiate one network and load its wheel weights strictly."""
    module_class, _, _ = NETWORKS[name]
    net = module_class()
    state = torch.load(weights_dir() / f"{name}.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def export(name: str, out_dir: Path) -> dict[str, object]:
    """Export one network to ONNX, check it against PyTorch, return manifest facts."""
    import onnxruntime as ort

    net = build(name)
    _, size, outputs = NETWORKS[name]
    example = torch.randn(2, 3, size or 64, size or 80)
    dynamic = {"input": {0: "batch"}} | {o: {0: "batch"} for o in outputs}
    if size is None:
        dynamic["input"] |= {2: "height", 3: "width"}
        for o in outputs:
            dynamic[o] |= {2: "out_height", 3: "out_width"}
    path = out_dir / f"mtcnn_{name}.onnx"
    torch.onnx.export(
        net, (example,), str(path), input_names=["input"], output_names=outputs,
        dynamic_axes=dynamic, opset_version=17, do_constant_folding=True, dynamo=False,
    )
    optimise_file(path)  # PReLU in onnxruntime's blocked CPU layout; checked below as well
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for shape in [(1, 3, size or 12, size or 12), (3, 3, size or 97, size or 131)]:
        x = torch.randn(*shape) * 0.8
        with torch.no_grad():
            expected = [t.numpy() for t in net(x)]
        got = session.run(None, {"input": x.numpy()})
        diffs = [float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True)]
        worst = max(worst, *diffs)
    if worst > 1e-4:
        raise SystemExit(f"{name}: ONNX differs from PyTorch by {worst}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path.name}: {path.stat().st_size} bytes, "
          f"max |onnx - torch| = {worst:.2e}, sha256 {digest}")
    return {"file": path.name, "sha256": digest, "max_abs_diff_vs_torch": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("resources/models"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    report = {name: export(name, args.out) for name in NETWORKS}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
