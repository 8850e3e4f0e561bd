"""The shipped lite MobileFaceNet end to end: real identities on the demo photos.

Unlike the mechanics tests (tiny test embedder), these use the bundled model and its
calibrated operating point from resources/models/manifest.json, so a model that cannot tell
people apart fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.cli import EXIT_OK, main
from faceguard.paths import models_dir
from faceguard.settings import DEFAULT_MODEL_FILE
from faceguard.vision.embedder import Embedder
from tests.conftest import demo_image
from tests.test_cli import moved_copy

MODEL = models_dir() / DEFAULT_MODEL_FILE


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FACEGUARD_EMBEDDER", raising=False)
    monkeypatch.delenv("FACEGUARD_EMBEDDER_SHA256", raising=False)
    return tmp_path / "data"


def identify(data_dir: Path, capsys: pytest.CaptureFixture[str], *images: Path) -> list[list]:
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "identify", "--json",
                 *map(str, images)]) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [[face["person"] for face in line["faces"]] for line in lines]


def test_model_signature_and_calibration() -> None:
    embedder = Embedder()
    assert embedder.dimension == 128
    assert MODEL.stat().st_size <= 3.4 * 1024 * 1024
    entry = json.loads((models_dir() / "manifest.json").read_text())["models"][MODEL.name]
    assert 0.0 < entry["threshold"] < 1.0 and entry["threshold_far"] == pytest.approx(1e-3)


def test_known_people_are_recognised_and_strangers_are_not(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, photo in (("Barack Obama", "obama1.jpg"), ("Joe Biden", "biden.jpg"),
                        ("Eileen Collins", "astronaut.png")):
        assert main(["--data-dir", str(data_dir), "enroll", name, str(demo_image(photo)),
                     "--consent-by", name]) == EXIT_OK  # a new library asks for consent
    moved = moved_copy(demo_image("astronaut.png"), tmp_path / "moved.png")
    people = identify(data_dir, capsys, demo_image("obama2.jpg"), demo_image("obama3.jpg"),
                      moved, demo_image("two_people.jpg"))
    assert people[0] == ["Barack Obama"]
    assert people[1] == ["Barack Obama"]
    assert people[2] == ["Eileen Collins"]
    assert sorted(people[3]) == ["Barack Obama", "Joe Biden"]
    strangers = identify(data_dir, capsys, demo_image("grace_hopper.jpg"),
                         demo_image("two_students.jpg"), demo_image("street_race.jpg"))
    assert all(person is None for faces in strangers for person in faces)
    assert sum(len(faces) for faces in strangers) >= 3


def test_same_person_is_closer_than_different_people(data_dir: Path) -> None:
    from faceguard.core.context import AppContext
    from faceguard.vision.image_io import load_image

    ctx = AppContext(data_dir)
    vectors = {}
    for name in ("obama1.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg"):
        found = ctx.engine.embed_largest(load_image(demo_image(name)))
        assert found is not None and found.embedding is not None
        vectors[name] = found.embedding
    same = [float(np.dot(vectors["obama1.jpg"], vectors[n])) for n in ("obama2.jpg",
                                                                       "obama3.jpg")]
    same.append(float(np.dot(vectors["biden.jpg"], vectors["biden2.jpg"])))
    different = [float(np.dot(vectors[a], vectors[b])) for a in ("obama1.jpg", "obama2.jpg")
                 for b in ("biden.jpg", "biden2.jpg")]
    assert min(same) > max(different) + 0.2
    ctx.close()
