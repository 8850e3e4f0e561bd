"""Tests for the dlib distillation teacher (needs dlib and ../shared/datasets/demo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceguard.training.dlib_teacher import DlibTeacher, l2_normalise, median_box
from faceguard.training.teacher import read_rgb

DEMO_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "demo"

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def teacher() -> DlibTeacher:
    """One teacher for the module (loading the models takes about half a second)."""
    pytest.importorskip("dlib", reason="dlib is not installed (pip install dlib-bin)")
    try:
        return DlibTeacher()
    except FileNotFoundError as error:
        pytest.skip(f"dlib model files unavailable: {error}")


def _demo(name: str) -> np.ndarray:
    """A demo photo as RGB, or skip when the shared datasets are missing."""
    path = DEMO_DIR / name
    if not path.is_file():
        pytest.skip(f"shared demo photo missing: {path}")
    image = read_rgb(path)
    assert image is not None, f"cannot read {path}"
    return image


def test_same_person_closer_than_different(teacher: DlibTeacher) -> None:
    """Two Obama photos are closer (cosine) than Obama and Biden."""
    results = {}
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        result = teacher.describe(_demo(name))
        assert result is not None, f"no face found in {name}"
        assert result.from_hog
        for vector in (result.vector, result.vector_mirrored):
            assert vector.shape == (128,)
            assert vector.dtype == np.float32
        results[name] = l2_normalise(result.vector)
    same = float(results["obama.jpg"] @ results["obama2.jpg"])
    different = float(results["obama.jpg"] @ results["biden.jpg"])
    assert same > different


def test_embed_largest_is_unit_length(teacher: DlibTeacher) -> None:
    """embed_largest returns unit vectors, plain and mirror-averaged."""
    image = _demo("obama2.jpg")
    for mirror in (False, True):
        vector = teacher.embed_largest(image, mirror=mirror)
        assert vector is not None
        assert vector.shape == (128,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_grey_image_has_no_face(teacher: DlibTeacher) -> None:
    """A uniform grey image gives None; a fallback box still gives a descriptor."""
    grey = np.full((200, 200, 3), 128, dtype=np.uint8)
    assert teacher.describe(grey) is None
    assert teacher.embed_largest(grey) is None
    forced = teacher.describe(grey, fallback_box=(12, 12, 167, 167))
    assert forced is not None
    assert not forced.from_hog
    assert forced.box == (12, 12, 167, 167)


def test_median_box_keeps_square_shape() -> None:
    """The fallback box uses the median centre and size, not per-coordinate medians."""
    boxes = [(0.0, 0.0, 0.5, 0.5), (0.3, 0.3, 1.0, 1.0), (0.1, 0.1, 0.9, 0.9)]
    assert median_box(boxes) == pytest.approx((0.15, 0.15, 0.85, 0.85))
