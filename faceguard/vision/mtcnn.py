"""MTCNN face detector (P-Net -> R-Net -> O-Net) run with onnxruntime, numpy and OpenCV.

Follows the cascade of Zhang et al. (2016) as facenet-pytorch implements it, so its outputs
agree with that reference (checked against golden outputs in tests/fixtures): an image
pyramid from the minimum face size, P-Net proposals with per-scale and cross-scale NMS, box
regression and squaring, R-Net refinement on 24x24 crops, O-Net on 48x48 crops giving the
final boxes and five landmarks (left eye, right eye, nose tip, left and right mouth corner,
"left" meaning image-left).

:meth:`MtcnnDetector.follow` finds a face again near where it was (video tracking): O-Net on the
last box (R-Net on seed boxes around it where that fails), skipping the P-Net pyramid that
costs most of a full detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceguard.vision.area_resampling import AreaResampler
from faceguard.vision.onnx_model import OnnxModel, TensorSpec, default_model_path

DEFAULT_MIN_FACE = 60
PYRAMID_FACTOR = 0.709
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
# Seeds for following a face: the last box shifted by these shares of its side (3 x 3) and,
# unshifted, scaled: 11 boxes for R-Net (like the P-Net proposals of a full detection).
FOLLOW_SHIFTS = (-0.15, 0.0, 0.15)
FOLLOW_SCALES = (0.85, 1.2)
FOLLOW_ONET_BOXES = 2  # R-Net's best boxes that O-Net refines
FOLLOW_MIN_IOU = 0.3  # a refined face overlapping the last box less is not the same face
NMS_BLOCK = 256  # candidates whose overlaps NMS computes as one matrix (memory ~ its square)


@dataclass(frozen=True)
class Face:
    """One detected face: box (x1, y1, x2, y2), detector score, 5 landmarks (x, y)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray = field(repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        """Face size in pixels: the shorter side of the box."""
        return min(self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height

    def scaled(self, factor: float) -> Face:
        """The same face in an image resized by ``factor``."""
        return Face(self.box * factor, self.score, self.landmarks * factor)


class _PNet(OnnxModel):
    inputs = (TensorSpec("input", (None, 3, None, None)),)
    outputs = (TensorSpec("prob", (None, 2, None, None)), TensorSpec("reg", (None, 4, None, None)))


class _RNet(OnnxModel):
    inputs = (TensorSpec("input", (None, 3, 24, 24)),)
    outputs = (TensorSpec("prob", (None, 2)), TensorSpec("reg", (None, 4)))


class _ONet(OnnxModel):
    inputs = (TensorSpec("input", (None, 3, 48, 48)),)
    outputs = (TensorSpec("prob", (None, 2)), TensorSpec("reg", (None, 4)),
               TensorSpec("landmarks", (None, 10)))


class MtcnnDetector:
    """Detects faces with 5 landmarks in RGB uint8 images."""

    def __init__(self, models_folder: Path | None = None, *, min_face: int = DEFAULT_MIN_FACE,
                 thresholds: tuple[float, float, float] = STAGE_THRESHOLDS,
                 factor: float = PYRAMID_FACTOR, threads: int = 1) -> None:
        def path(name: str) -> Path:
            return (models_folder / name) if models_folder else default_model_path(name)

        self.pnet = _PNet(path("mtcnn_pnet.onnx"), threads=threads)
        self.rnet = _RNet(path("mtcnn_rnet.onnx"), threads=threads)
        self.onet = _ONet(path("mtcnn_onet.onnx"), threads=threads)
        self.min_face = int(min_face)
        self.thresholds = thresholds
        self.factor = factor

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Face]:
        """Faces in an RGB uint8 image, largest first."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        min_face = int(min_face or self.min_face)
        height, width = image.shape[:2]
        if min(height, width) < 12 or min_face > min(height, width):
            return []
        pyramid = AreaResampler(image)
        boxes = self._propose(pyramid, min_face)
        if len(boxes) == 0:
            return []
        boxes = self._refine(pyramid, boxes)
        if len(boxes) == 0:
            return []
        boxes, points = self._output(pyramid, boxes)
        faces = [Face(b[:4].astype(np.float32), float(b[4]), p.astype(np.float32))
                 for b, p in zip(boxes, points, strict=True)]
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def follow(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> list[Face | None]:
        """Each face again near its last box (x1, y1, x2, y2), or None where it is lost.

        First O-Net alone on the squared last box (one 48x48 crop; its box regression
        absorbs the motion of one frame). Where that finds no face overlapping the last box,
        seed boxes around it (:data:`FOLLOW_SHIFTS`, :data:`FOLLOW_SCALES`) are refined by
        R-Net and O-Net exactly as P-Net proposals are in :meth:`detect`. Of the faces found,
        the one overlapping the last box most is kept.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        if not len(boxes):
            return []
        pyramid = AreaResampler(image)
        found: list[Face | None] = []
        for last in boxes:
            prior = np.asarray(last, dtype=np.float32)[:4]
            face = self._closest(pyramid, _square(np.append(prior, 1.0)[None]), prior)
            if face is None:
                refined = self._refine(pyramid, _seed_boxes(prior))[:FOLLOW_ONET_BOXES]
                face = self._closest(pyramid, refined, prior) if len(refined) else None
            found.append(face)
        return found

    def _closest(self, pyramid: AreaResampler, candidates: np.ndarray,
                 prior: np.ndarray) -> Face | None:
        """O-Net's faces from candidate boxes: the one overlapping ``prior`` most (at least
        :data:`FOLLOW_MIN_IOU`), or None."""
        out, points = self._output(pyramid, candidates)
        faces = [Face(b[:4].astype(np.float32), float(b[4]), p.astype(np.float32))
                 for b, p in zip(out, points, strict=True)]
        overlaps = [box_iou(face.box, prior) for face in faces]
        best = int(np.argmax(overlaps)) if faces else -1
        return faces[best] if faces and overlaps[best] >= FOLLOW_MIN_IOU else None

    # -- stage 1 -------------------------------------------------------------------------
    def _scales(self, height: int, width: int, min_face: int) -> list[float]:
        scale = 12.0 / min_face
        side = min(height, width) * scale
        scales = []
        while side >= 12:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def _propose(self, pyramid: AreaResampler, min_face: int) -> np.ndarray:
        height, width = pyramid.height, pyramid.width
        scales = self._scales(height, width, min_face)
        # Every level first, while the summed-area table is still in the CPU's caches.
        levels = [_to_input(pyramid.resize(int(width * scale + 1), int(height * scale + 1))[None])
                  for scale in scales]
        candidates = []
        for scale, level in zip(scales, levels, strict=True):
            out = self.pnet.run({"input": level})
            found = _pnet_boxes(out["prob"][0, 1], out["reg"][0], scale, self.thresholds[0])
            if len(found):
                candidates.append(found[nms(found[:, :4], found[:, 4], 0.5)])
        if not candidates:
            return np.empty((0, 9), np.float32)
        boxes = np.concatenate(candidates)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        regressed = np.stack([
            boxes[:, 0] + boxes[:, 5] * widths, boxes[:, 1] + boxes[:, 6] * heights,
            boxes[:, 2] + boxes[:, 7] * widths, boxes[:, 3] + boxes[:, 8] * heights,
            boxes[:, 4]], axis=1)
        return _square(regressed)

    # -- stage 2 -------------------------------------------------------------------------
    def _refine(self, pyramid: AreaResampler, boxes: np.ndarray) -> np.ndarray:
        crops, kept = _crop_resize(pyramid, boxes, 24)
        if not len(crops):
            return np.empty((0, 5), np.float32)
        boxes = boxes[kept]
        out = self.rnet.run({"input": _to_input(crops)})
        score = out["prob"][:, 1]
        passed = score > self.thresholds[1]
        boxes = np.concatenate([boxes[passed, :4], score[passed, None]], axis=1)
        reg = out["reg"][passed]
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[keep], reg[keep]))

    # -- stage 3 -------------------------------------------------------------------------
    def _output(self, pyramid: AreaResampler,
                boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops, kept = _crop_resize(pyramid, boxes, 48)
        if not len(crops):
            return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
        boxes = boxes[kept]
        out = self.onet.run({"input": _to_input(crops)})
        score = out["prob"][:, 1]
        passed = score > self.thresholds[2]
        boxes = np.concatenate([boxes[passed, :4], score[passed, None]], axis=1)
        reg = out["reg"][passed]
        marks = out["landmarks"][passed]
        widths = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        heights = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([widths * marks[:, :5] + boxes[:, 0:1] - 1,
                           heights * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7, overlap="min")
        return boxes[keep], points[keep]


def _seed_boxes(box: np.ndarray) -> np.ndarray:
    """Square seed boxes around a face box for R-Net (see :data:`FOLLOW_SHIFTS`)."""
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    side = max(width, height)
    cx, cy = float(box[0]) + width / 2, float(box[1]) + height / 2
    placed = [(dx, dy, 1.0) for dx in FOLLOW_SHIFTS for dy in FOLLOW_SHIFTS]
    placed += [(0.0, 0.0, scale) for scale in FOLLOW_SCALES]
    seeds = [(cx + dx * side - half, cy + dy * side - half, cx + dx * side + half,
              cy + dy * side + half)
             for dx, dy, scale in placed for half in (side * scale / 2,)]
    return np.asarray(seeds, dtype=np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    inter_w = max(0.0, min(float(a[2]), float(b[2])) - max(float(a[0]), float(b[0])))
    inter_h = max(0.0, min(float(a[3]), float(b[3])) - max(float(a[1]), float(b[1])))
    inter = inter_w * inter_h
    union = (float(a[2] - a[0]) * float(a[3] - a[1]) + float(b[2] - b[0]) * float(b[3] - b[1])
             - inter)
    return inter / union if union > 0 else 0.0


def _to_input(planar: np.ndarray) -> np.ndarray:
    """Channel-first float32 RGB (N, 3, H, W) normalised in place for the networks."""
    planar -= 127.5
    planar *= 0.0078125
    return planar


def _pnet_boxes(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Map P-Net's output grid cells above threshold to image boxes: x1 y1 x2 y2 score reg*4."""
    stride, cell = 2, 12
    ys, xs = np.nonzero(prob >= threshold)
    boxes = np.empty((len(ys), 9), np.float32)
    origin = boxes[:, 2:4]  # scratch: x, y of each cell, overwritten last
    origin[:, 0], origin[:, 1] = xs, ys
    boxes[:, 0:2] = np.floor((stride * origin + 1) / scale)
    boxes[:, 2:4] = np.floor((stride * origin + cell) / scale)
    boxes[:, 4] = prob[ys, xs]
    boxes[:, 5:] = reg[:, ys, xs].T
    return boxes


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (keeps extra columns)."""
    out = boxes.copy()
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(widths, heights)
    out[:, 0] = boxes[:, 0] + widths * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + heights * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply R-Net/O-Net box regression (offsets relative to the inclusive box size)."""
    out = boxes.copy()
    widths = boxes[:, 2] - boxes[:, 0] + 1
    heights = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * widths
    out[:, 1] += reg[:, 1] * heights
    out[:, 2] += reg[:, 2] * widths
    out[:, 3] += reg[:, 3] * heights
    return out


def _crop_resize(pyramid: AreaResampler, boxes: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool each box's part inside the image to size x size (1-based inclusive box ends)."""
    x1 = np.maximum(np.trunc(boxes[:, 0]).astype(np.int64), 1)
    y1 = np.maximum(np.trunc(boxes[:, 1]).astype(np.int64), 1)
    x2 = np.minimum(np.trunc(boxes[:, 2]).astype(np.int64), pyramid.width)
    y2 = np.minimum(np.trunc(boxes[:, 3]).astype(np.int64), pyramid.height)
    kept = np.nonzero((y2 > y1 - 1) & (x2 > x1 - 1))[0]
    if not len(kept):
        return np.empty((0, 3, size, size), np.float32), kept
    regions = np.stack([x1 - 1, y1 - 1, x2, y2], axis=1)[kept]
    return pyramid.crops(regions, size), kept


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float,
        overlap: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``overlap="union"`` uses IoU (areas without the +1 pixel convention, like torchvision);
    ``"min"`` divides the intersection by the smaller box's area (+1 convention, as the
    reference's final stage does). A box is dropped where a kept, better box overlaps it by
    more than ``threshold`` (or by an undefined ratio, as for two empty boxes). Candidates are
    taken in blocks of :data:`NMS_BLOCK` in score order, each block's overlaps with itself
    and with the boxes kept so far computed as one matrix.
    """
    if len(boxes) <= 1:
        return np.arange(len(boxes))
    plus = 1.0 if overlap == "min" else 0.0
    order = np.argsort(-scores, kind="stable")
    corners = boxes[order, :4].astype(np.float64)
    areas = (corners[:, 2] - corners[:, 0] + plus) * (corners[:, 3] - corners[:, 1] + plus)
    kept: list[int] = []  # positions in ``order``
    for start in range(0, len(order), NMS_BLOCK):
        block = slice(start, start + NMS_BLOCK)
        alive = np.ones(len(corners[block]), dtype=bool)
        if kept:
            alive &= ~_suppresses(corners[kept], areas[kept], corners[block], areas[block],
                                  threshold, overlap).any(axis=0)
        within = _suppresses(corners[block], areas[block], corners[block], areas[block],
                             threshold, overlap)
        for i in np.flatnonzero(alive):
            if alive[i]:
                kept.append(start + int(i))
                alive &= ~within[i]
    return order[kept].astype(int)


def _suppresses(a: np.ndarray, a_areas: np.ndarray, b: np.ndarray, b_areas: np.ndarray,
                threshold: float, overlap: str) -> np.ndarray:
    """(len(a), len(b)) booleans: box a[i] overlapping b[j] by more than ``threshold`` (or by
    an undefined ratio); the same arithmetic, pair by pair, as one greedy step."""
    plus = 1.0 if overlap == "min" else 0.0
    inter_w = np.maximum(0.0, np.minimum(a[:, None, 2], b[None, :, 2])
                         - np.maximum(a[:, None, 0], b[None, :, 0]) + plus)
    inter_h = np.maximum(0.0, np.minimum(a[:, None, 3], b[None, :, 3])
                         - np.maximum(a[:, None, 1], b[None, :, 1]) + plus)
    inter = inter_w * inter_h
    with np.errstate(divide="ignore", invalid="ignore"):  # pairs greedy NMS never compares
        if overlap == "min":
            ratio = inter / np.minimum(a_areas[:, None], b_areas[None, :])
        else:
            ratio = inter / (a_areas[:, None] + b_areas[None, :] - inter)
    return ~(ratio <= threshold)
