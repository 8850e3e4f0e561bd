"""Record golden MTCNN outputs of the reference implementation (facenet-pytorch's detect_face).

Runs facenet-pytorch's own ``detect_face`` cascade (loaded from the installed wheel's source
file) with the networks of tools/convert_mtcnn.py (the same weights, loaded strictly). Its
module imports torchvision only for ``batched_nms`` and PIL for image-type checks; neither can
be installed next to the CPU torch here, so both are replaced by stand-ins: ``batched_nms`` by
a plain greedy NMS with torchvision's semantics (IoU without the +1 pixel convention, boxes of
different batch indices never suppress each other).

Usage::

    python tools/mtcnn_golden.py --images ../shared/datasets/demo \
        --out tests/fixtures/mtcnn_golden.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_mtcnn import build, weights_dir

GOLDEN_IMAGES = ["astronaut.png", "two_students.jpg", "street_race.jpg", "grace_hopper.jpg"]
MIN_FACE = 20
THRESHOLDS = [0.6, 0.7, 0.7]
FACTOR = 0.709


def _greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = torch.argsort(scores, descending=True)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = torch.maximum(boxes[i, 0], boxes[:, 0])
        yy1 = torch.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = torch.minimum(boxes[i, 2], boxes[:, 2])
        yy2 = torch.minimum(boxes[i, 3], boxes[:, 3])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (area[i] + area - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                 iou_threshold: float) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    offset = idxs.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return _greedy_nms(boxes + offset, scores, iou_threshold)


def load_reference_detect_face() -> types.FunctionType:
    """Load facenet-pytorch's detect_face with the two stand-ins registered."""
    torchvision = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    boxes_mod = types.ModuleType("torchvision.ops.boxes")
    boxes_mod.batched_nms = _batched_nms  # type: ignore[attr-defined]
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    pil = types.ModuleType("PIL")
    pil.Image = types.ModuleType("PIL.Image")  # type: ignore[attr-defined]
    sys.modules.update({
        "torchvision": torchvision, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
        "torchvision.transforms": transforms, "torchvision.transforms.functional": functional,
        "PIL": pil, "PIL.Image": pil.Image,
    })
    source = weights_dir().parent / "models" / "utils" / "detect_face.py"
    spec = importlib.util.spec_from_file_location("reference_detect_face", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.detect_face


class _ReferenceOrder(torch.nn.Module):
    """Reorder outputs: the reference expects (reg, prob) / (reg, landmarks, prob)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        prob, reg, *rest = self.net(x)
        return (reg, *rest, prob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    detect_face = load_reference_detect_face()
    nets = [_ReferenceOrder(build(n)) for n in ("pnet", "rnet", "onet")]
    images: dict[str, dict[str, list]] = {}
    for name in GOLDEN_IMAGES:
        bgr = cv2.imread(str(args.images / name), cv2.IMREAD_COLOR)
        assert bgr is not None, name
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        with torch.no_grad():
            boxes, points = detect_face(rgb, MIN_FACE, *nets, THRESHOLDS, FACTOR, "cpu")
        boxes = np.asarray(boxes[0], dtype=np.float64).reshape(-1, 5)
        points = np.asarray(points[0], dtype=np.float64).reshape(-1, 5, 2)
        images[name] = {
            "shape": list(rgb.shape),
            "boxes": np.round(boxes[:, :4], 3).tolist(),
            "scores": np.round(boxes[:, 4], 5).tolist(),
            "landmarks": np.round(points, 3).tolist(),
        }
        print(f"{name}: {len(boxes)} faces")
    images["blank"] = {"shape": [480, 640, 3], "boxes": [], "scores": [], "landmarks": []}
    golden = {"min_face": MIN_FACE, "thresholds": THRESHOLDS, "factor": FACTOR, "images": images}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=1))


if __name__ == "__main__":
    main()
