"""`faceguard eval lfw --teacher sface`: the SFace pipeline next to ours (LFW is eval only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.training.sface import PREPARED_NAME, prepared_sface_path
from faceguard.vision.mtcnn import Face
from faceguard.vision.selection import nearest_centre as central_face
from tests.conftest import LFW


def _face(x1: float, y1: float, x2: float, y2: float) -> Face:
    return Face(np.array([x1, y1, x2, y2], np.float32), 0.99, np.zeros((5, 2), np.float32))


def test_central_face_beats_a_larger_border_face() -> None:
    border = _face(-40, 20, 120, 230)  # larger, cut by the left edge
    centre = _face(80, 70, 170, 180)
    assert central_face([border, centre], 250, 250) is centre
    assert central_face([], 250, 250) is None


def test_teacher_option_defaults_to_dlib() -> None:
    import argparse

    from faceguard.evaluation.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["eval", "lfw", "--teacher"]).teacher == "dlib"
    assert parser.parse_args(["eval", "lfw", "--teacher", "--json"]).teacher == "dlib"
    assert parser.parse_args(["eval", "lfw", "--teacher", "sface"]).teacher == "sface"
    assert parser.parse_args(["eval", "lfw"]).teacher is None


@pytest.fixture()
def eval_env(tmp_path: Path, test_embedder_env: tuple[Path, str],
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny test embedder, a fresh data folder and an empty training cache."""
    monkeypatch.setenv("FACEGUARD_TRAIN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def _lfw() -> Path:
    if not (LFW / "pairs.txt").is_file():
        pytest.skip(f"needs the LFW subset at {LFW} (../shared/datasets/lfw)")
    return LFW


@pytest.mark.shared
def test_missing_sface_is_one_line(eval_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.cli import main

    code = main(["--data-dir", str(eval_env), "eval", "lfw", "--dataset", str(_lfw()),
                 "--limit-pairs", "3", "--teacher", "sface"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "fetch_sface" in err[-1]


@pytest.mark.shared
def test_cli_eval_lfw_with_sface(tmp_path: Path, test_embedder_env: tuple[Path, str],
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    real = prepared_sface_path()
    if not real.is_file():
        pytest.skip("SFace not fetched (run `python tools/fetch_sface.py`)")
    dataset = _lfw()
    cache = tmp_path / "cache"
    (cache / "sface").mkdir(parents=True)
    (cache / "sface" / PREPARED_NAME).symlink_to(real)
    monkeypatch.setenv("FACEGUARD_TRAIN_CACHE", str(cache))
    from faceguard.cli import main

    assert main(["--data-dir", str(tmp_path / "data"), "eval", "lfw", "--dataset",
                 str(dataset), "--limit-pairs", "6", "--teacher", "sface", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    teacher = report["teacher"]
    assert teacher["model_id"].startswith("sface")
    assert teacher["images"] == report["images"] and teacher["images_without_face"] == 0
    assert teacher["accuracy_mean"] >= 0.8
    assert teacher["ms_per_face"]["embedder"] > 0
