"""Passive liveness: two MiniFASNet networks (Silent-Face anti-spoofing) fused into one score.

Each network sees the face box scaled about its centre (2.7x and 4.0x), shifted inside the
image as upstream's crop does, resized to 80x80, BGR, raw 0..255 values, NCHW. Upstream's
boxes came from a RetinaFace detector; ours come from MTCNN, so an MTCNN box is first mapped
to the box RetinaFace would have drawn (:func:`upstream_box`, measured and documented in
resources/models/LIVENESS_MODEL_CARD.md). The fused live probability is the mean of the two
networks' softmax probabilities of class 1 ("live"), as upstream's predictor computes it.

A face that is too small, cut by the image border, or so close to the border or the camera
that a crop would have to be moved or shrunk far beyond what upstream's own frames show,
gives ``None`` ("unsure"), never a live score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import ModelError
from faceguard.vision.onnx_model import OnnxModel, TensorSpec, default_model_path

log = logging.getLogger(__name__)

CROP_SIZE = 80
LIVE_CLASS = 1
# (file, box scale) of the two networks, in upstream's fusion order
LIVENESS_MODELS: tuple[tuple[str, float], ...] = (
    ("minifasnet_v2_80_s2.7.onnx", 2.7),
    ("minifasnet_v1se_80_s4.onnx", 4.0),
)

# MTCNN box -> upstream (RetinaFace) box, relative to the MTCNN box's width and height:
# the upstream box is BOX_SCALE_W x wider and BOX_SCALE_H x taller, and its centre lies
# BOX_SHIFT_Y box heights above the MTCNN centre. Both detectors regress to WIDER FACE
# boxes (forehead to chin, cheek to cheek) and our MTCNN boxes match that convention
# (height 2.7x the eye-to-mouth distance, width 2.2x the eye distance, eyes at 0.39 of the
# height on LFW), so the mapping is the identity; the samples keep upstream's class over
# box scales 0.8..1.25 and centre shifts of +-0.1 box heights (see the model card).
BOX_SCALE_W = 1.0
BOX_SCALE_H = 1.0
BOX_SHIFT_Y = 0.0

# Tolerances beyond which the crop is not the one the networks were trained on.
MIN_FACE_PX = 40.0        # upstream-box short side; the 2.7x crop puts ~30 px of face in 80
MAX_OUTSIDE = 0.05        # part of the face box that may lie outside the image (per side)
MAX_SHIFT = 0.3           # crop moved to fit the image, as a fraction of the crop's size
MIN_SCALE_FRACTION = 0.4  # crop shrunk to fit the image: effective / nominal scale


@dataclass(frozen=True)
class Crop:
    """One network's input: tensor (3, 80, 80) float32 BGR and how it was cut.

    ``region`` is (x1, y1, x2, y2), inclusive pixel bounds as upstream slices them; ``scale``
    is the scale actually used (upstream lowers it when the scaled box exceeds the image);
    ``shift`` is how far the region was moved to fit inside the image, as a fraction of its
    size (the larger of the x and y shifts).
    """

    tensor: np.ndarray
    region: tuple[int, int, int, int]
    scale: float
    shift: float


@dataclass(frozen=True)
class LivenessResult:
    """The fused live probability (None: unsure), each network's probabilities, why unsure."""

    live: float | None
    probabilities: tuple[np.ndarray, ...] = ()
    reason: str | None = None


def upstream_box(box: Sequence[float] | np.ndarray) -> np.ndarray:
    """MTCNN (x1, y1, x2, y2) -> the (x, y, w, h) box upstream's detector would give."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 - BOX_SHIFT_Y * h
    new_w, new_h = w * BOX_SCALE_W, h * BOX_SCALE_H
    return np.array([cx - new_w / 2, cy - new_h / 2, new_w, new_h], np.float64)


def crop_region(box_xywh: Sequence[float] | np.ndarray, scale: float, width: int,
                height: int) -> tuple[tuple[int, int, int, int], float, float]:
    """Upstream's crop geometry: ((x1, y1, x2, y2) inclusive, effective scale, shift).

    The box is scaled about its centre (the scale lowered so the result fits the image),
    then moved back inside the image where it sticks out, then truncated to integers.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {tuple(box_xywh)}")
    used = min((height - 1) / h, (width - 1) / w, scale)
    new_w, new_h = w * used, h * used
    cx, cy = x + w / 2, y + h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    dx = dy = 0.0
    if left < 0:
        dx, right, left = -left, right - left, 0.0
    if top < 0:
        dy, bottom, top = -top, bottom - top, 0.0
    if right > width - 1:
        dx, left, right = right - (width - 1), left - (right - (width - 1)), width - 1.0
    if bottom > height - 1:
        dy, top, bottom = bottom - (height - 1), top - (bottom - (height - 1)), height - 1.0
    shift = max(dx / new_w, dy / new_h)
    return (int(left), int(top), int(right), int(bottom)), used, shift


def crop_for_scale(image_rgb: np.ndarray, box_xywh: Sequence[float] | np.ndarray,
                   scale: float, size: int = CROP_SIZE) -> Crop:
    """Cut one network's input from an RGB uint8 image, as upstream's crop does."""
    height, width = image_rgb.shape[:2]
    region, used, shift = crop_region(box_xywh, scale, width, height)
    x1, y1, x2, y2 = region
    patch = cv2.resize(image_rgb[max(y1, 0):y2 + 1, max(x1, 0):x2 + 1], (size, size),
                       interpolation=cv2.INTER_LINEAR)
    # RGB -> BGR after resizing (per-channel resampling commutes with the reorder)
    tensor = np.ascontiguousarray(patch[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)
    return Crop(tensor, region, used, shift)


class LivenessNet(OnnxModel):
    """One MiniFASNet: ``input`` (N, 3, 80, 80) BGR 0..255 -> ``prob`` (N, 3) softmax."""

    inputs = (TensorSpec("input", (None, 3, CROP_SIZE, CROP_SIZE)),)
    outputs = (TensorSpec("prob", (None, 3)),)

    def __init__(self, path: str | Path, scale: float, *, sha256: str | None = None,
                 threads: int = 1, verify: bool = True) -> None:
        super().__init__(path, sha256=sha256, threads=threads, verify=verify)
        self.scale = scale

    def probabilities(self, tensors: np.ndarray) -> np.ndarray:
        """(N, 3, 80, 80) float32 -> (N, 3) class probabilities (class 1 = live)."""
        return self.run({"input": np.ascontiguousarray(tensors, np.float32)})["prob"]


class LivenessChecker:
    """Fused passive-liveness score of a face in an RGB frame, or None when unsure.

    ``LivenessChecker()`` loads the bundled networks (resources/models); pass
    ``models_folder`` for another folder holding the same file names and a manifest. A
    missing or damaged file raises :class:`faceguard.errors.ModelError`.
    """

    def __init__(self, models_folder: Path | None = None, *, threads: int = 1,
                 min_face: float = MIN_FACE_PX, max_outside: float = MAX_OUTSIDE,
                 max_shift: float = MAX_SHIFT,
                 min_scale_fraction: float = MIN_SCALE_FRACTION) -> None:
        def path(name: str) -> Path:
            return (models_folder / name) if models_folder else default_model_path(name)

        self.nets = [LivenessNet(path(name), scale, threads=threads)
                     for name, scale in LIVENESS_MODELS]
        self.min_face = min_face
        self.max_outside = max_outside
        self.max_shift = max_shift
        self.min_scale_fraction = min_scale_fraction
        self.model_id = "+".join(f"{n.path.stem}@{n.sha256[:12]}" for n in self.nets)

    def crops(self, image_rgb: np.ndarray,
              mtcnn_box: Sequence[float] | np.ndarray) -> tuple[list[Crop], str | None]:
        """The crops for each network, or ([], reason) where the face cannot be judged."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got "
                             f"{image_rgb.dtype} {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        box = upstream_box(mtcnn_box)
        x, y, w, h = box
        if min(w, h) < self.min_face:
            return [], f"face too small for the liveness check ({min(w, h):.0f} px)"
        outside = max(-x / w, -y / h, (x + w - width) / w, (y + h - height) / h)
        if outside > self.max_outside:
            return [], "face cut by the image border"
        crops = [crop_for_scale(image_rgb, box, net.scale) for net in self.nets]
        for net, crop in zip(self.nets, crops, strict=True):
            if crop.shift > self.max_shift:
                return [], "face too near the image border for the liveness check"
            if crop.scale < self.min_scale_fraction * net.scale:
                return [], "face too close to the camera for the liveness check"
        return crops, None

    def assess(self, image_rgb: np.ndarray,
               mtcnn_box: Sequence[float] | np.ndarray) -> LivenessResult:
        """Fused live probability with each network's probabilities, or why it is unsure."""
        crops, reason = self.crops(image_rgb, mtcnn_box)
        if reason is not None:
            return LivenessResult(None, (), reason)
        probs = tuple(net.probabilities(crop.tensor[None])[0]
                      for net, crop in zip(self.nets, crops, strict=True))
        live = float(np.mean([p[LIVE_CLASS] for p in probs]))
        return LivenessResult(min(max(live, 0.0), 1.0), probs, None)

    def score(self, image_rgb: np.ndarray,
              mtcnn_box: Sequence[float] | np.ndarray) -> float | None:
        """Fused live probability 0..1 of the face in ``mtcnn_box``, or None (unsure)."""
        return self.assess(image_rgb, mtcnn_box).live


def checker_for_mode(mode: str, models_folder: Path | None = None, *,
                     threads: int = 1) -> LivenessChecker | None:
    """The checker a liveness mode needs: None for ``off``.

    A missing or damaged model is a :class:`ModelError` (a start-up error) in ``enforce``
    mode, and a logged warning in ``observe`` mode, which then goes on without liveness
    (None).
    """
    if mode == "off":
        return None
    try:
        return LivenessChecker(models_folder, threads=threads)
    except ModelError as error:
        if mode == "enforce":
            raise ModelError(f"liveness is set to enforce but its model cannot be loaded "
                             f"({error}); reinstall FaceGuard's models or set liveness_mode "
                             "to observe or off") from error
        log.warning("the liveness model cannot be loaded (%s); going on without liveness",
                    error)
        return None
