"""Which face counts: a face cut off by the image border never beats a whole face."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_OK
from faceguard.vision.image_io import load_image
from faceguard.vision.mtcnn import Face
from faceguard.vision.selection import cut_reason, inside_fraction, rank_faces, why_not_used
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
GRACE = REPO / "resources" / "demo" / "grace_hopper.jpg"


def face(x1: float, y1: float, x2: float, y2: float) -> Face:
    w, h = x2 - x1, y2 - y1
    marks = np.array([[x1 + 0.3 * w, y1 + 0.4 * h], [x1 + 0.7 * w, y1 + 0.4 * h],
                      [x1 + 0.5 * w, y1 + 0.55 * h], [x1 + 0.35 * w, y1 + 0.75 * h],
                      [x1 + 0.65 * w, y1 + 0.75 * h]])
    return Face(np.array([x1, y1, x2, y2], float), 0.99, marks)


def test_partial_faces_rank_after_whole_ones() -> None:
    whole = face(300, 100, 400, 220)  # 100 px, inside
    cut = face(-120, 80, 100, 340)  # 220 px, more than half outside on the left
    edge = face(500, 200, 640, 380)  # 140 px, box inside but touching the right edge
    assert inside_fraction(cut, 640, 480) < 0.5 and cut_reason(cut, 640, 480)
    assert cut_reason(whole, 640, 480) is None
    assert rank_faces([cut, edge, whole], 640, 480) == [edge, whole, cut]
    centred = face(280, 200, 360, 290)
    assert rank_faces([whole, centred, cut], 640, 480, "central")[0] is centred
    assert why_not_used(cut, whole, 640, 480, "largest").startswith("cut off by the image")
    assert why_not_used(face(10, 10, 60, 70), whole, 640, 480, "largest") == \
        "smaller than the face used"
    with pytest.raises(ValueError):
        rank_faces([whole], 640, 480, "biggest")  # type: ignore[arg-type]


def test_identify_uses_the_whole_face_and_says_why_not_the_cut_one(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    capsys.readouterr()
    # A large face cut by the left border next to a smaller, whole face of Eileen.
    canvas = np.full((700, 1150, 3), 60, np.uint8)
    grace = cv2.resize(load_image(GRACE), None, fx=1.6, fy=1.6)  # her face at x 274-563
    canvas[:, :380] = grace[:700, 330:710]  # ... now at x -56 to 233: cut by the border
    eileen = load_image(ASTRONAUT)
    canvas[150:150 + eileen.shape[0], 600:600 + eileen.shape[1]] = eileen
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    assert run_cli(data_dir, "identify", "--json", str(photo)) == EXIT_OK
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) >= 2
    used = [f for f in faces if f["used"]]
    assert len(used) == 1 and faces[0] is used[0]
    assert used[0]["person"] == "Eileen Collins"
    assert any((f["why_not_used"] or "").startswith("cut off by the image border")
               for f in faces[1:])
    assert run_cli(data_dir, "verify", "--json", "--pick", "largest", str(photo),
                   str(ASTRONAUT)) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["same"] is True
