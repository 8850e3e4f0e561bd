"""Evaluation: metrics on synthetic scores, the gallery protocol, the ROC plot, the CLI on LFW."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.evaluation.gallery import evaluate_gallery
from faceguard.evaluation.lfw_pairs import DatasetError, load_subset, select_pairs
from faceguard.evaluation.metrics import (
    ImpostorScores,
    Pair,
    PairsFormatError,
    best_threshold,
    calibrate_threshold,
    far_key,
    kfold_accuracy,
    parse_pairs,
    roc_curve,
    tar_at_far,
)
from faceguard.evaluation.roc_plot import PlotError, RocSeries, draw_roc, render_roc
from tests.conftest import LFW

PAIRS_TEXT = """2\t2
Ann\t1\t2
Bob\t1\t3
Ann\t1\tBob\t2
Cid\t4\tDee\t1
Eve\t1\t2
Fay\t2\t3
Eve\t1\tFay\t1
Gus\t1\tAnn\t3
"""


# -- metrics ----------------------------------------------------------------------------------

def test_parse_pairs_assigns_folds_labels_and_paths() -> None:
    pairs = parse_pairs(PAIRS_TEXT)
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[0] == Pair("Ann", 1, "Ann", 2, 0, True)
    assert pairs[3].image_a == "images/Cid/Cid_0004.jpg"
    assert pairs[3].image_b == "images/Dee/Dee_0001.jpg"


@pytest.mark.parametrize("text", ["", "2 2\nAnn 1 2\n", "1 1\nAnn 1\nAnn 1 Bob 2\n",
                                  "1 1\nAnn 1 2\nAnn 1 Bob\n", "x 1\nAnn 1 2\nA 1 B 2\n"])
def test_parse_pairs_rejects_malformed_files(text: str) -> None:
    with pytest.raises(PairsFormatError):
        parse_pairs(text)


def test_best_threshold_separates_separable_scores() -> None:
    scores = np.array([0.1, 0.9, 0.3, 0.7, 0.2])
    labels = np.array([False, True, False, True, False])
    threshold, accuracy = best_threshold(scores, labels)
    assert accuracy == 1.0
    assert threshold == pytest.approx(0.5)


def test_kfold_accuracy_perfectly_separable_is_100_percent() -> None:
    rng = np.random.default_rng(1)
    genuine = rng.uniform(0.6, 1.0, 3000)
    impostor = rng.uniform(-0.2, 0.4, 3000)
    scores = np.concatenate([genuine, impostor])
    labels = np.repeat([True, False], 3000)
    folds = np.concatenate([np.arange(3000) % 10, np.arange(3000) % 10])
    result = kfold_accuracy(scores, labels, folds)
    assert result.mean == 1.0 and result.std == 0.0
    assert len(result.accuracies) == 10
    assert all(0.4 <= t < 0.6 for t in result.thresholds)


def test_kfold_accuracy_known_answer_with_one_outlier_per_fold() -> None:
    # each fold: genuine 0.9, 0.8, 0.2 (an outlier) and impostors 0.1, 0.3, 0.4
    fold_scores = [0.9, 0.8, 0.2, 0.1, 0.3, 0.4]
    fold_labels = [True, True, True, False, False, False]
    scores = np.array(fold_scores * 10)
    labels = np.array(fold_labels * 10)
    folds = np.repeat(np.arange(10), 6)
    result = kfold_accuracy(scores, labels, folds)
    assert result.mean == pytest.approx(5 / 6)
    assert result.std == pytest.approx(0.0)
    assert result.thresholds == pytest.approx((0.6,) * 10)


def test_kfold_accuracy_needs_two_folds() -> None:
    with pytest.raises(ValueError):
        kfold_accuracy(np.array([0.1, 0.9]), np.array([False, True]), np.array([0, 0]))


def test_calibrate_threshold_on_a_uniform_sample() -> None:
    values = np.random.default_rng(2).permutation(np.arange(10_000) / 10_000)
    for far, expected in [(1e-2, 0.9899), (1e-3, 0.9989), (1e-4, 0.9998), (0.0, 0.9999)]:
        threshold = calibrate_threshold(values, far)
        assert threshold == pytest.approx(expected)
        assert np.mean(values > threshold) == pytest.approx(far)
    assert np.mean(values > calibrate_threshold(values, 1.0)) == 1.0


def test_tar_at_far_on_uniform_scores() -> None:
    impostor = np.arange(10_000) / 10_000  # 0 .. 0.9999
    genuine = np.arange(1000) / 1000 + 0.5  # 0.5 .. 1.499
    tar, threshold = tar_at_far(genuine, impostor, 1e-2)
    assert threshold == pytest.approx(0.9899)
    assert tar == pytest.approx(np.mean(genuine > 0.9899))  # 510 of 1000
    assert tar == pytest.approx(0.51)


def test_streaming_impostor_scores_match_the_exact_thresholds() -> None:
    rng = np.random.default_rng(3)
    scores = np.clip(rng.normal(0.0, 0.2, 200_000), -1, 1).astype(np.float32)
    stats = ImpostorScores(keep=int(1e-2 * scores.size) + 1)
    for chunk in np.array_split(scores, 7):
        stats.add(chunk)
    assert stats.count == scores.size
    for far in (1e-2, 1e-3, 1e-4, 1e-5):
        assert stats.threshold(far) == pytest.approx(calibrate_threshold(scores, far))
    with pytest.raises(ValueError):
        stats.threshold(0.5)


def test_roc_curve_of_separable_scores() -> None:
    curve = roc_curve(np.full(50, 0.9), np.full(500, 0.1))
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)
    assert np.all(np.diff(curve.thresholds) < 0)
    assert np.any((curve.far == 0) & (curve.tar == 1))
    assert curve.far[-1] == 1.0 and curve.tar[-1] == 1.0
    # a histogram ROC at edges: FAR and TAR of score >= edge
    edge = np.argmin(np.abs(curve.thresholds - 0.5))
    assert curve.far[edge] == 0.0 and curve.tar[edge] == 1.0


def test_far_key() -> None:
    assert far_key(1e-3) == "1e-3"
    assert far_key(1e-4) == "1e-4"
    assert far_key(2.5e-4) == "2.5e-4"


def test_select_pairs_spreads_over_folds_and_labels() -> None:
    pairs = parse_pairs(PAIRS_TEXT)
    chosen = select_pairs(pairs, 4)
    assert {(p.fold, p.same) for p in chosen} == {(0, True), (0, False), (1, True), (1, False)}
    assert select_pairs(pairs, None) == pairs


# -- gallery protocol ---------------------------------------------------------------------------

def _people(count: int, images: int, dim: int = 32, seed: int = 4
            ) -> tuple[list[str], np.ndarray]:
    """Identities and well-separated unit vectors (each person near a random direction)."""
    rng = np.random.default_rng(seed)
    names, rows = [], []
    for person in range(count):
        centre = rng.standard_normal(dim)
        for _ in range(images):
            names.append(f"P{person:03d}")
            rows.append(centre + 0.05 * rng.standard_normal(dim))
    vectors = np.asarray(rows, np.float32)
    return names, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_gallery_separable_people_are_identified_and_strangers_rejected() -> None:
    names, vectors = _people(20, 5)
    singles, single_vectors = _people(10, 1, seed=5)
    names += [f"S{n}" for n in singles]
    vectors = np.concatenate([vectors, single_vectors])
    has_face = np.ones(len(names), bool)
    report = evaluate_gallery(names, vectors, has_face, threshold=0.8, margin=0.05)
    assert report.people_qualifying == 20 and report.people_enrolled == 10
    assert report.templates == 20 and report.enrolled_probes == 30
    assert report.stranger_people == 20 and report.stranger_probes == 10 * 5 + 10
    assert report.rank1_rate == 1.0 and report.accept_rate == 1.0
    assert report.stranger_false_accept_rate == 0.0
    loose = evaluate_gallery(names, vectors, has_face, threshold=-1.0, margin=0.0)
    assert loose.stranger_false_accept_rate == 1.0
    assert loose.rank1_rate == 1.0
    assert set(loose.to_json()) >= {"rank1_rate", "accept_rate", "stranger_false_accept_rate"}


def test_gallery_images_without_a_face_count_as_misses() -> None:
    names, vectors = _people(4, 4)
    has_face = np.zeros(len(names), bool)
    report = evaluate_gallery(names, vectors, has_face, threshold=0.5, margin=0.0)
    assert report.templates == 0
    assert report.rank1_rate == 0.0
    assert report.enrolled_probes_without_face == report.enrolled_probes
    assert report.stranger_false_accept_rate is None


def test_visits_fuse_photos_as_the_kiosk_fuses_frames() -> None:
    from faceguard.evaluation.gallery_visits import evaluate_visits, fused_visits
    from faceguard.kiosk.tracking import Track
    from faceguard.vision.mtcnn import Face

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5, 16)).astype(np.float32)
    track = Track(1, Face(np.array([0, 0, 10, 10], np.float32), 1.0,
                          np.zeros((5, 2), np.float32)))
    for row in (0, 2, 3):
        fused = track.fuse(vectors[row] / np.linalg.norm(vectors[row]))
    np.testing.assert_allclose(fused_visits(vectors, [[0, 2, 3]])[0], fused, atol=1e-6)

    names, people = _people(20, 7)  # 10 enrolled with 2 photos, 5 probes each: 2 visits of 2
    singles, single_vectors = _people(6, 3, seed=9)
    names += [f"S{n}" for n in singles]
    vectors = np.concatenate([people, single_vectors])
    has_face = np.ones(len(names), bool)
    visits = evaluate_visits(names, vectors, has_face, threshold=0.8, margin=0.05,
                             photos_per_visit=2).to_json()
    assert visits["enrolled_visits"] == 10 * 2 and visits["accept_rate"] == 1.0
    # strangers: 10 unenrolled qualifying people (7 photos: 3 visits) + 6 with 3 (1 visit)
    assert visits["stranger_visits"] == 10 * 3 + 6 and visits["stranger_false_accept_rate"] == 0
    loose = evaluate_visits(names, vectors, has_face, threshold=-1.0, margin=0.0,
                            photos_per_visit=3).to_json()
    assert loose["enrolled_visits"] == 10 and loose["stranger_false_accept_rate"] == 1.0
    with pytest.raises(ValueError, match="at least one photo"):
        evaluate_visits(names, vectors, has_face, threshold=0.8, margin=0.0, photos_per_visit=0)


# -- ROC plot -------------------------------------------------------------------------------------

def test_roc_plot_is_drawn_and_written(tmp_path: Path) -> None:
    far = np.logspace(-6, 0, 50)
    series = [RocSeries("model", far, np.sqrt(far) ** 0.1, {1e-3: 0.7, 1e-4: 0.6}),
              RocSeries("teacher", far, far ** 0.02, {1e-3: 0.87})]
    image = render_roc(series, "test")
    assert image.shape == (640, 900, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
    path = draw_roc(tmp_path / "roc.png", series)
    loaded = cv2.imread(str(path))
    assert loaded is not None and loaded.shape == (640, 900, 3)
    with pytest.raises(PlotError):
        draw_roc(tmp_path / "roc.jpg", series)
    with pytest.raises(PlotError):
        draw_roc(tmp_path / "missing" / "roc.png", series)


# -- the command line on LFW -----------------------------------------------------------------

def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_subset(tmp_path / "nowhere")


@pytest.fixture()
def eval_env(tmp_path: Path, test_embedder_env: tuple[Path, str],
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny test embedder, a fresh data folder and an empty evaluation cache."""
    monkeypatch.setenv("FACEGUARD_TRAIN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def _lfw() -> Path:
    if not (LFW / "pairs.txt").is_file():
        pytest.skip(f"needs the LFW subset at {LFW} (../shared/datasets/lfw)")
    return LFW


@pytest.mark.shared
def test_cli_eval_lfw_json_then_cached_and_gallery(
        eval_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.cli import main

    dataset = _lfw()
    base = ["--data-dir", str(eval_env), "eval"]
    roc = tmp_path / "roc.png"
    assert main([*base, "lfw", "--dataset", str(dataset), "--limit-pairs", "20", "--json",
                 "--roc", str(roc), "--calibrate", "0.01"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["pairs"] == 20 and report["folds"] == 10 and report["images"] == 40
    assert report["model_id"].startswith("test_embedder@")
    assert 0.0 <= report["accuracy_mean"] <= 1.0 and report["accuracy_std"] >= 0.0
    assert set(report["tar_at_far"]) == {"1e-3", "1e-4"}
    assert set(report["threshold_at_far"]) == {"1e-3", "1e-4"}
    assert report["images_without_face"] == 0 and report["pairs_failed"] == 0
    assert report["genuine_pairs_all"] == 10 and report["impostor_pairs_all"] == 770
    assert report["ms_per_face"]["embedder"] > 0 and report["ms_per_face"]["detector"] > 0
    assert report["calibration"]["far"] == 0.01 and "LFW" in report["calibration"]["note"]
    assert "teacher" not in report
    assert roc.is_file()
    assert "embedding 40" in err

    assert main([*base, "lfw", "--dataset", str(dataset), "--limit-pairs", "20"]) == 0
    out, err = capsys.readouterr()
    assert "40 of 40 images cached" in err
    assert "10-fold accuracy" in out and "TAR at FAR 1e-3" in out

    assert main([*base, "gallery", "--dataset", str(dataset), "--limit-pairs", "20", "--json",
                 "--threshold", "0.9"]) == 0
    out, err = capsys.readouterr()
    gallery = json.loads(out)
    assert gallery["threshold"] == 0.9 and gallery["operating_point_source"] == "command line"
    assert gallery["stranger_probes"] == 40 - 2 * gallery["people_enrolled"] - gallery[
        "enrolled_probes"]
    assert "40 of 40 images cached" in err


@pytest.mark.shared
def test_cli_eval_lfw_with_teacher(eval_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dlib", reason="dlib is not installed (pip install dlib-bin)")
    from faceguard.cli import main

    dataset = _lfw()
    assert main(["--data-dir", str(eval_env), "eval", "lfw", "--dataset", str(dataset),
                 "--limit-pairs", "3", "--teacher", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    teacher = report["teacher"]
    assert teacher["images"] == report["images"] == 6
    assert teacher["model_id"].startswith("dlib")
    assert teacher["ms_per_face"]["embedder"] > 0
    assert report["speed_ratio_teacher_over_ours"]["embedder"] > 0


def test_cli_eval_missing_dataset_is_one_line(
        eval_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.cli import main

    code = main(["--data-dir", str(eval_env), "eval", "lfw", "--dataset",
                 str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "LFW dataset not found" in err


@pytest.mark.shared
def test_cli_eval_gallery_scores_every_calibrated_level(
        tmp_path: Path, calibrated_model: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from faceguard.cli import main
    from tests.conftest import make_data_dir

    dataset = _lfw()
    monkeypatch.setenv("FACEGUARD_TRAIN_CACHE", str(tmp_path / "cache"))
    data = make_data_dir(tmp_path, match_threshold=None)
    assert main(["--data-dir", str(data), "eval", "gallery", "--dataset", str(dataset),
                 "--limit-pairs", "60", "--json", "--levels", "--visits", "2"]) == 0
    gallery = json.loads(capsys.readouterr().out)
    levels = gallery["levels"]
    assert [(row["level"], row["far"], row["threshold"]) for row in levels] == [
        ("standard", 1e-3, 0.61), ("strict", 1e-4, 0.72), ("very-strict", 1e-5, 0.83)]
    assert levels[0]["accept_rate"] == gallery["accept_rate"]  # the level in force
    assert levels[0]["visits"] == gallery["visits"] and gallery["visits"]["photos_per_visit"] == 2
    named = [row["accept_rate"] for row in levels]
    strangers = [row["stranger_false_accept_rate"] for row in levels]
    assert named == sorted(named, reverse=True) and strangers == sorted(strangers, reverse=True)
    assert main(["--data-dir", str(data), "eval", "gallery", "--dataset", str(dataset),
                 "--limit-pairs", "60", "--levels", "--visits", "2"]) == 0
    out = capsys.readouterr().out
    assert "strictness levels" in out and "very-strict" in out and "0.8300" in out
    assert "by visits of 2 fused photos" in out and "visits of 2:" in out
