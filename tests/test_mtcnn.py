"""The MTCNN runtime against golden outputs of the reference implementation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.vision.image_io import load_image
from faceguard.vision.mtcnn import NMS_BLOCK, MtcnnDetector, nms
from tests.conftest import demo_image

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "mtcnn_golden.json").read_text())


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector(min_face=GOLDEN["min_face"], thresholds=tuple(GOLDEN["thresholds"]),
                         factor=GOLDEN["factor"])


@pytest.mark.parametrize("name", [n for n in GOLDEN["images"] if n != "blank"])
def test_matches_reference(detector: MtcnnDetector, name: str) -> None:
    expected = GOLDEN["images"][name]
    image = load_image(demo_image(name))
    faces = detector.detect(image)
    assert len(faces) == len(expected["boxes"])
    boxes = np.array(expected["boxes"])
    marks = np.array(expected["landmarks"])
    for face in faces:
        match = int(np.abs(boxes - face.box).max(axis=1).argmin())
        assert np.abs(boxes[match] - face.box).max() <= 3.0
        assert np.abs(marks[match] - face.landmarks).max() <= 2.0
        assert face.score == pytest.approx(expected["scores"][match], abs=0.05)


def test_expected_face_counts(detector: MtcnnDetector) -> None:
    counts = {name: len(detector.detect(load_image(demo_image(name))))
              for name in ("astronaut.png", "two_students.jpg", "street_race.jpg")}
    assert counts["astronaut.png"] == 1
    assert counts["two_students.jpg"] == 2
    assert counts["street_race.jpg"] >= 5


def test_blank_and_tiny_images_have_no_faces(detector: MtcnnDetector) -> None:
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []


def test_landmarks_inside_box_and_largest_first(detector: MtcnnDetector) -> None:
    faces = detector.detect(load_image(demo_image("street_race.jpg")))
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert (face.landmarks[:, 0] > x1 - 2).all() and (face.landmarks[:, 0] < x2 + 2).all()
        assert (face.landmarks[:, 1] > y1 - 2).all() and (face.landmarks[:, 1] < y2 + 2).all()
        left_eye, right_eye = face.landmarks[0], face.landmarks[1]
        assert left_eye[0] < right_eye[0]


def test_min_face_filters_small_faces() -> None:
    image = load_image(demo_image("street_race.jpg"))
    small = MtcnnDetector(min_face=20).detect(image)
    large = MtcnnDetector(min_face=80).detect(image)
    assert len(large) < len(small)


def test_nms_suppresses_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.95, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.5, overlap="min").tolist() == [1, 2]
    assert nms(np.empty((0, 4)), np.empty(0), 0.5).tolist() == []


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float,
                overlap: str) -> list[int]:
    """Plain greedy NMS, one best box at a time (the reference for the blocked one)."""
    plus = 1.0 if overlap == "min" else 0.0
    b = boxes.astype(np.float64)
    areas = (b[:, 2] - b[:, 0] + plus) * (b[:, 3] - b[:, 1] + plus)
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        while order:
            best, rest = order[0], np.array(order[1:], dtype=int)
            keep.append(int(best))
            inter = (np.maximum(0.0, np.minimum(b[best, 2], b[rest, 2])
                                - np.maximum(b[best, 0], b[rest, 0]) + plus)
                     * np.maximum(0.0, np.minimum(b[best, 3], b[rest, 3])
                                  - np.maximum(b[best, 1], b[rest, 1]) + plus))
            if overlap == "min":
                ratio = inter / np.minimum(areas[best], areas[rest])
            else:
                ratio = inter / (areas[best] + areas[rest] - inter)
            order = [int(i) for i in rest[ratio <= threshold]]
    return keep


@pytest.mark.parametrize("count", [1, 2, 3, 9, 40, NMS_BLOCK + 37, 2 * NMS_BLOCK + 5])
def test_nms_matches_greedy_reference(count: int) -> None:
    rng = np.random.default_rng(count)
    for trial in range(12):
        corner = rng.uniform(-20, 120, (count, 2))
        size = rng.uniform(-4, 40, (count, 2))  # some inverted boxes
        size[rng.random((count, 2)) < 0.1] = 0  # and empty ones
        boxes = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
        scores = rng.random(count).astype(np.float32)
        if trial % 2:
            boxes, scores = np.round(boxes), np.round(scores, 1)  # equal boxes, tied scores
        for overlap in ("union", "min"):
            for threshold in (0.3, 0.5, 0.7):
                kept = nms(boxes, scores, threshold, overlap=overlap)
                assert kept.tolist() == _greedy_nms(boxes, scores, threshold, overlap)
