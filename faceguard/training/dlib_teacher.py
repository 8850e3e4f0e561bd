"""dlib's face descriptor as the distillation teacher: HOG frontal face detector, 5-point shape
predictor and ResNet descriptor (``dlib_face_recognition_resnet_model_v1.dat``), with the
model files taken from the ``face_recognition_models`` package. The 68-point predictor is
never used (its licence does not allow products).

Also the box geometry of the fallback box (used where HOG finds no face): relative and
absolute boxes, and the median box of a sample. dlib is imported only by
:class:`DlibTeacher` itself.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]
"""A face box (left, top, right, bottom) in dlib's convention (right/bottom inclusive)."""

DESCRIPTOR_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
HOG_UPSAMPLE = 1
PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_models_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package.

    The package is located without importing it (its ``__init__`` needs pkg_resources).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The face_recognition_models package is not installed (pip install "
            "face_recognition_models)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to unit length, as float32."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return vector.copy()
    return (vector / norm).astype(np.float32)


@dataclass(frozen=True)
class TeacherResult:
    """dlib's descriptors for one face: raw vectors as dlib returns them."""

    vector: np.ndarray
    """float32 (128,), descriptor of the aligned 150x150 chip."""
    vector_mirrored: np.ndarray
    """float32 (128,), descriptor of the horizontally mirrored chip."""
    box: Box
    """The face box used for the landmarks (left, top, right, bottom)."""
    from_hog: bool
    """True when HOG found the face, False when the fallback box was used."""


class DlibTeacher:
    """dlib HOG detector + 5-point landmarks + ResNet descriptor (original and mirrored)."""

    def __init__(self, models_dir: Path | None = None) -> None:
        """Load the three dlib models (dlib is imported here, not at module import)."""
        import dlib

        folder = models_dir if models_dir is not None else dlib_models_dir()
        predictor_path = folder / PREDICTOR_FILE
        descriptor_path = folder / DESCRIPTOR_FILE
        for path in (predictor_path, descriptor_path):
            if not path.is_file():
                raise FileNotFoundError(f"dlib model file not found: {path}")
        self._dlib: Any = dlib
        self._detector: Any = dlib.get_frontal_face_detector()
        self._predictor: Any = dlib.shape_predictor(str(predictor_path))
        self._encoder: Any = dlib.face_recognition_model_v1(str(descriptor_path))

    @staticmethod
    def _check_image(image_rgb: np.ndarray) -> np.ndarray:
        """A C-contiguous uint8 (H, W, 3) array, or ValueError."""
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(
                f"expected a uint8 RGB image of shape (H, W, 3), got {image_rgb.dtype} "
                f"{image_rgb.shape}"
            )
        return np.ascontiguousarray(image_rgb)

    def detect(self, image_rgb: np.ndarray) -> Box | None:
        """The largest HOG face box (upsample 1), or None when HOG finds no face."""
        image = self._check_image(image_rgb)
        rects = self._detector(image, HOG_UPSAMPLE)
        if len(rects) == 0:
            return None
        best = max(rects, key=lambda r: r.width() * r.height())
        return (int(best.left()), int(best.top()), int(best.right()), int(best.bottom()))

    def describe(
        self, image_rgb: np.ndarray, fallback_box: Box | None = None
    ) -> TeacherResult | None:
        """Descriptors of the largest face; ``fallback_box`` is used when HOG finds none.

        Returns None when HOG finds no face and no fallback box is given.
        """
        image = self._check_image(image_rgb)
        box = self.detect(image)
        from_hog = box is not None
        if box is None:
            if fallback_box is None:
                return None
            box = (
                int(fallback_box[0]),
                int(fallback_box[1]),
                int(fallback_box[2]),
                int(fallback_box[3]),
            )
        rect = self._dlib.rectangle(box[0], box[1], box[2], box[3])
        shape = self._predictor(image, rect)
        chip = self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        mirrored = np.ascontiguousarray(chip[:, ::-1])
        vectors = self._encoder.compute_face_descriptor([chip, mirrored])
        return TeacherResult(
            vector=np.asarray(vectors[0], dtype=np.float32),
            vector_mirrored=np.asarray(vectors[1], dtype=np.float32),
            box=box,
            from_hog=from_hog,
        )

    def embed_largest(
        self, image_rgb: np.ndarray, mirror: bool = False, fallback_box: Box | None = None
    ) -> np.ndarray | None:
        """L2-normalised float32 (128,) vector of the largest face, or None if no face.

        With ``mirror=True`` the unit vectors of the chip and of its mirror are added and the
        sum renormalised.
        """
        result = self.describe(image_rgb, fallback_box=fallback_box)
        if result is None:
            return None
        if not mirror:
            return l2_normalise(result.vector)
        return l2_normalise(l2_normalise(result.vector) + l2_normalise(result.vector_mirrored))


def absolute_box(relative: Sequence[float], width: int, height: int) -> Box:
    """A relative (left, top, right, bottom) box in pixels for an image of this size."""
    return (
        round(relative[0] * width),
        round(relative[1] * height),
        round(relative[2] * width),
        round(relative[3] * height),
    )


def median_box(
    boxes: Sequence[Sequence[float]],
) -> tuple[float, float, float, float]:
    """The box with the median centre and median width and height of these boxes.

    Unlike a per-coordinate median this keeps HOG's square shape when box sizes vary.
    """
    array = np.asarray(boxes, dtype=np.float64)
    centre_x = float(np.median((array[:, 0] + array[:, 2]) / 2))
    centre_y = float(np.median((array[:, 1] + array[:, 3]) / 2))
    half_w = float(np.median(array[:, 2] - array[:, 0])) / 2
    half_h = float(np.median(array[:, 3] - array[:, 1])) / 2
    return (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)
