"""The MTCNN runtime against golden outputs of the reference implementation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.vision.image_io import load_image
from faceguard.vision.mtcnn import MtcnnDetector, nms
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
