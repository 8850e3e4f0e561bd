"""A hand-damaged model manifest: every field the product reads is checked when it is read,
and a damaged one is a ModelError naming the manifest file, the model and the field, which
``faceguard identify``, ``faceguard config set`` and the window show instead of a traceback."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from faceguard.core.context import AppContext
from faceguard.core.operating_point import calibrated_thresholds
from faceguard.errors import ModelError
from faceguard.settings import load_settings
from faceguard.vision.embedder import Embedder
from tests.conftest import demo_image, make_data_dir, model_with_manifest, run_cli

CALIBRATED = {"threshold": 0.61, "threshold_far": 1e-3,
              "thresholds": {"0.001": 0.61, "0.0001": 0.72, "1e-05": 0.83}}

# (what the entry gets, the field the message names, what it says about it)
DAMAGE = {
    "a table value that is not a number": (
        {"thresholds": {"0.001": "abc", "0.0001": 0.72}},
        'thresholds["0.001"]', 'must be a number (it is "abc")'),
    "the table a list": (
        {"thresholds": [0.61, 0.72]},
        "thresholds", "must be an object mapping false-accept rates to thresholds "
        "(it is [0.61, 0.72])"),
    "a table key that is not a rate": (
        {"thresholds": {"often": 0.61}},
        'thresholds key "often"', 'must be a false-accept rate (it is "often")'),
    "a table key outside (0, 1]": (
        {"thresholds": {"2": 0.61}},
        'thresholds key "2"', "must be in (0.0, 1.0] (it is 2.0)"),
    "a table threshold of -1": (
        {"thresholds": {"0.001": -1}},
        'thresholds["0.001"]', "must be in (-1.0, 1.0] (it is -1)"),
    "the threshold above 1": (
        {"threshold": 1.5},
        "threshold", "must be in (-1.0, 1.0] (it is 1.5)"),
    "the threshold a boolean": (
        {"threshold": True},
        "threshold", "must be a number (it is true)"),
    "the threshold's rate a string": (
        {"threshold_far": "1e-3"},
        "threshold_far", 'must be a number (it is "1e-3")'),
    "a negative margin": (
        {"margin": -0.1},
        "margin", "must be in [0.0, 2.0] (it is -0.1)"),
    "mirror a string": (
        {"mirror": "false"},
        "mirror", 'must be true or false (it is "false")'),
    "an unknown fusion rule": (
        {"fusion": "mean"},
        "fusion", 'must be one of max, max_mean (it is "mean")'),
}


@pytest.fixture()
def in_force(tmp_path: Path, test_embedder_file: tuple[Path, str],
             monkeypatch: pytest.MonkeyPatch) -> Callable[[str], tuple[Path, str]]:
    """``in_force(kind)``: the test embedder, calibrated, its manifest entry damaged as
    ``DAMAGE[kind]`` says and in force for the app; with the message expected for it."""
    def damaged(kind: str) -> tuple[Path, str]:
        damage, field, problem = DAMAGE[kind]
        path = model_with_manifest(tmp_path, test_embedder_file, {**CALIBRATED, **damage})
        monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
        monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", test_embedder_file[1])
        return path, _message(path, field, problem)

    return damaged


def _message(path: Path, field: str, problem: str) -> str:
    manifest = path.resolve().parent / "manifest.json"
    return f"model manifest {manifest} is damaged: {path.name}'s {field} {problem}"


@pytest.mark.parametrize("kind", DAMAGE)
def test_each_damaged_field_is_named_when_the_matcher_is_made(
        kind: str, tmp_path: Path, in_force: Callable[[str], tuple[Path, str]]) -> None:
    _, message = in_force(kind)
    ctx = AppContext(make_data_dir(tmp_path, match_threshold=None))
    try:
        with pytest.raises(ModelError) as refused:
            ctx.matcher  # noqa: B018  # the engine, the operating point, the fusion rule
        assert str(refused.value) == message
    finally:
        ctx.close()


def test_the_calibration_table_is_refused_where_the_settings_dialog_reads_it(
        in_force: Callable[[str], tuple[Path, str]]) -> None:
    path, message = in_force("a table value that is not a number")
    with pytest.raises(ModelError) as refused:
        calibrated_thresholds(path)
    assert str(refused.value) == message


def test_a_digest_that_is_not_one_is_named(
        tmp_path: Path, test_embedder_file: tuple[Path, str]) -> None:
    path = model_with_manifest(tmp_path, test_embedder_file, {"sha256": "0123abc"})
    with pytest.raises(ModelError) as refused:
        Embedder(path)
    assert str(refused.value) == _message(path, "sha256",
                                          'must be 64 hexadecimal digits (it is "0123abc")')


@pytest.mark.parametrize(("manifest", "problem"), [
    ([], 'it must be a JSON object whose "models" maps each model file to its entry'),
    ({"models": ["site_model.onnx"]},
     'it must be a JSON object whose "models" maps each model file to its entry'),
    ({"models": {"site_model.onnx": [0.61]}},
     "the entry of site_model.onnx must be a JSON object (it is [0.61])"),
])
def test_a_manifest_of_the_wrong_shape_is_refused_with_its_name(
        manifest: object, problem: str, tmp_path: Path,
        test_embedder_file: tuple[Path, str]) -> None:
    path = model_with_manifest(tmp_path, test_embedder_file, {})
    file = path.parent / "manifest.json"
    file.write_text(json.dumps(manifest))
    with pytest.raises(ModelError) as refused:
        calibrated_thresholds(path)
    assert str(refused.value) == f"model manifest {file.resolve()} is damaged: {problem}"


def test_identify_says_which_field_is_damaged_on_one_line(
        tmp_path: Path, in_force: Callable[[str], tuple[Path, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, message = in_force("a table value that is not a number")
    data = make_data_dir(tmp_path, match_threshold=None)
    photo = demo_image("grace_hopper.jpg")
    assert run_cli(data, "identify", str(photo)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_set_strictness_says_which_field_is_damaged_and_saves_nothing(
        tmp_path: Path, in_force: Callable[[str], tuple[Path, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, message = in_force("the threshold above 1")
    data = make_data_dir(tmp_path, match_threshold=None)
    assert run_cli(data, "config", "set", "recognition.strictness", "strict") == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert load_settings(data).match_strictness == "standard"


def test_the_window_says_which_field_is_damaged_instead_of_starting(
        qtbot, open_context, tmp_path: Path,  # type: ignore[no-untyped-def]
        in_force: Callable[[str], tuple[Path, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PySide6")
    from faceguard.gui import app

    _, message = in_force("a table value that is not a number")
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app.QMessageBox, "critical",
                        lambda parent, title, text: shown.append((title, text)))
    ctx = open_context(make_data_dir(tmp_path, match_threshold=None))
    args = argparse.Namespace(demo=False, data_dir=None, min_face=None, source=None,
                              kiosk=False)
    assert app.run_gui(ctx, args) == 1
    assert shown == [("FaceGuard cannot start", message)]


def test_the_settings_dialog_says_which_field_is_damaged(
        qtbot, open_context, tmp_path: Path,  # type: ignore[no-untyped-def]
        in_force: Callable[[str], tuple[Path, str]]) -> None:
    pytest.importorskip("PySide6")
    from faceguard.gui.settings_dialog import SettingsDialog

    _, message = in_force("the table a list")
    dialog = SettingsDialog(open_context(make_data_dir(tmp_path, match_threshold=None)))
    qtbot.addWidget(dialog)
    assert dialog.message.text() == message
