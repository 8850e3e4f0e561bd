"""Passive liveness: conversion, upstream's classes on its samples, crop geometry, load errors."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import ModelError
from faceguard.paths import models_dir
from faceguard.vision import liveness as lv
from faceguard.vision.onnx_model import file_sha256

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO.parent / "shared" / "models" / "silent-face-anti-spoofing"
SAMPLES = WEIGHTS / "samples"
needs_weights = pytest.mark.skipif(
    not (WEIGHTS / "SHA256SUMS").is_file(),
    reason="../shared/models/silent-face-anti-spoofing (upstream weights and samples) "
           "is not beside the project")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch (the train extra) is not installed")


@pytest.fixture(scope="module")
def checker() -> lv.LivenessChecker:
    return lv.LivenessChecker(threads=1)


def _frame(height: int = 480, width: int = 640) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


# --- crop geometry (synthetic) ---------------------------------------------------------

def test_identity_box_mapping() -> None:
    box = lv.upstream_box([100.0, 50.0, 200.0, 180.0])
    np.testing.assert_allclose(box, [100.0, 50.0, 100.0, 130.0])


def test_centred_face_is_scaled_about_its_centre() -> None:
    region, used, shift = lv.crop_region([270, 190, 100, 100], 2.7, 640, 480)
    assert used == 2.7 and shift == 0.0
    x1, y1, x2, y2 = region
    assert (x1, y1, x2, y2) == (185, 105, 455, 375)


def test_crop_is_shifted_inside_the_image_as_upstream_does() -> None:
    region, used, shift = lv.crop_region([10, 200, 100, 100], 2.7, 640, 480)
    assert used == 2.7
    assert region[0] == 0 and region[2] == 270       # moved right by 75 px
    assert shift == pytest.approx(75 / 270)


def test_scale_is_lowered_when_the_crop_exceeds_the_image() -> None:
    region, used, shift = lv.crop_region([220, 90, 200, 300], 4.0, 640, 480)
    assert used == pytest.approx(479 / 300)
    assert region[1] == 0 and region[3] == 479
    assert shift < 0.01                              # half a pixel at the bottom


def test_crop_tensor_is_bgr_raw_nchw() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30    # RGB
    crop = lv.crop_for_scale(image, [270, 190, 100, 100], 2.7)
    assert crop.tensor.shape == (3, 80, 80) and crop.tensor.dtype == np.float32
    assert crop.tensor[:, 40, 40].tolist() == [30.0, 20.0, 10.0]  # B, G, R, unscaled


def test_small_face_is_unsure(checker: lv.LivenessChecker) -> None:
    result = checker.assess(_frame(), [300, 200, 330, 236])
    assert result.live is None and "too small" in (result.reason or "")


def test_face_cut_by_border_is_unsure(checker: lv.LivenessChecker) -> None:
    assert checker.score(_frame(), [-40, 100, 110, 290]) is None
    assert checker.score(_frame(), [250, 380, 370, 530]) is None


def test_face_near_border_is_unsure(checker: lv.LivenessChecker) -> None:
    # inside the image, but the 4.0x crop would have to move by ~40% of its size
    result = checker.assess(_frame(), [2, 150, 102, 270])
    assert result.live is None and "border" in (result.reason or "")


def test_face_too_close_is_unsure(checker: lv.LivenessChecker) -> None:
    # fills the frame: the 4.0x crop would shrink to 1.04x
    result = checker.assess(_frame(), [140, 2, 480, 462])
    assert result.live is None and "close" in (result.reason or "")


def test_centred_face_gets_a_probability(checker: lv.LivenessChecker) -> None:
    result = checker.assess(_frame(), [270, 170, 370, 300])
    assert result.live is not None and 0.0 <= result.live <= 1.0
    assert len(result.probabilities) == 2
    for probs in result.probabilities:
        assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert result.live == pytest.approx(
        np.mean([p[lv.LIVE_CLASS] for p in result.probabilities]))


def test_rejects_non_rgb_input(checker: lv.LivenessChecker) -> None:
    with pytest.raises(ValueError):
        checker.score(np.zeros((480, 640), np.uint8), [270, 170, 370, 300])


# --- load errors ------------------------------------------------------------------------

def _copy_models(target: Path) -> None:
    for name in [n for n, _ in lv.LIVENESS_MODELS] + ["manifest.json"]:
        shutil.copy(models_dir() / name, target / name)


def test_missing_model_is_a_model_error(tmp_path: Path) -> None:
    _copy_models(tmp_path)
    (tmp_path / lv.LIVENESS_MODELS[1][0]).unlink()
    with pytest.raises(ModelError, match="not found"):
        lv.LivenessChecker(tmp_path)


def test_damaged_model_is_a_model_error(tmp_path: Path) -> None:
    _copy_models(tmp_path)
    path = tmp_path / lv.LIVENESS_MODELS[0][0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or not the expected version"):
        lv.LivenessChecker(tmp_path)


def test_truncated_model_with_matching_digest_cannot_load(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes((models_dir() / lv.LIVENESS_MODELS[0][0]).read_bytes()[:5000])
    with pytest.raises(ModelError, match="cannot be loaded"):
        lv.LivenessNet(path, 2.7, sha256=file_sha256(path))


def test_bundled_models_are_listed_with_their_scale() -> None:
    import json

    manifest = json.loads((models_dir() / "manifest.json").read_text())["models"]
    for name, scale in lv.LIVENESS_MODELS:
        assert manifest[name]["scale"] == scale
        assert manifest[name]["card"] == "LIVENESS_MODEL_CARD.md"


# --- upstream's samples -----------------------------------------------------------------

UPSTREAM_CLASS = {"image_F1.jpg": False, "image_F2.jpg": False, "image_T1.jpg": True}


@needs_weights
@pytest.mark.parametrize("name", sorted(UPSTREAM_CLASS))
def test_samples_are_classified_as_upstream_classifies_them(
        name: str, checker: lv.LivenessChecker) -> None:
    from faceguard.vision.image_io import load_image
    from faceguard.vision.mtcnn import MtcnnDetector

    image = load_image(SAMPLES / name)
    face = max(MtcnnDetector(min_face=40).detect(image), key=lambda f: f.area)
    result = checker.assess(image, face.box)
    assert result.live is not None, result.reason
    # upstream: argmax over the summed softmaxes of both networks; class 1 is live
    label = int(np.argmax(np.sum(result.probabilities, axis=0)))
    assert (label == lv.LIVE_CLASS) is UPSTREAM_CLASS[name]
    assert (result.live > 0.5) is UPSTREAM_CLASS[name]


# --- conversion -------------------------------------------------------------------------

@needs_torch
@needs_weights
def test_conversion_matches_pytorch_and_is_reproducible(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import convert_minifasnet as conv
    finally:
        sys.path.pop(0)
    for key, spec in conv.NETWORKS.items():
        report = conv.export(key, WEIGHTS, tmp_path)
        diffs = report["max_abs_diff_vs_torch"]
        assert isinstance(diffs, dict) and max(diffs.values()) < 1e-4
        assert report["sha256"] == file_sha256(models_dir() / spec.onnx), (
            f"{spec.onnx}: the converter no longer reproduces the bundled file")
