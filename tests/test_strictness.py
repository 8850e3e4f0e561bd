"""Strictness levels: the calibrated threshold at the false-accept rate the settings choose
(faceguard.core.operating_point), refused clearly where the model was never calibrated there,
and chosen in the settings dialog."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceguard.core.context import AppContext
from faceguard.core.operating_point import calibrated_thresholds, one_in, operating_point
from faceguard.settings import Settings, load_settings
from faceguard.settings.schema import STRICTNESS_FAR, SettingsError
from tests.conftest import make_data_dir, model_with_manifest

SINGLE_LEVEL = {"threshold": 0.6, "threshold_far": 1e-3}  # an entry without a table

def test_each_level_uses_its_calibrated_threshold(calibrated_model: Path) -> None:
    assert calibrated_thresholds(calibrated_model) == {
        "standard": 0.61, "strict": 0.72, "very-strict": 0.83}
    for level, threshold in (("standard", 0.61), ("strict", 0.72), ("very-strict", 0.83)):
        point = operating_point(Settings(match_strictness=level), calibrated_model)
        assert (point.threshold, point.margin, point.far) == (threshold, 0.04,
                                                              STRICTNESS_FAR[level])
        assert level in point.source and one_in(STRICTNESS_FAR[level]) in point.source
    explicit = operating_point(Settings(match_threshold=0.5, match_strictness="strict"),
                               calibrated_model)
    assert (explicit.threshold, explicit.source) == (0.5, "settings")


def test_an_entry_with_one_calibration_is_the_standard_level_only(
        tmp_path: Path, test_embedder_file: tuple[Path, str]) -> None:
    path = model_with_manifest(tmp_path, test_embedder_file, SINGLE_LEVEL)
    assert calibrated_thresholds(path) == {"standard": 0.6}
    assert operating_point(Settings(), path).threshold == 0.6
    with pytest.raises(SettingsError) as refused:
        operating_point(Settings(match_strictness="very-strict"), path)
    message = str(refused.value)
    assert "very-strict" in message and "1 in 100,000" in message
    assert "standard (1 in 1,000)" in message and "recognition.threshold" in message


def test_one_in_reads_as_people_say_it() -> None:
    assert [one_in(far) for far in (1e-3, 1e-4, 1e-5)] == \
        ["1 in 1,000", "1 in 10,000", "1 in 100,000"]


def test_the_shipped_model_is_calibrated_at_every_level() -> None:
    from faceguard.vision.onnx_model import default_model_path, manifest_entry

    path = default_model_path("lite_mobilefacenet_96.onnx")
    levels = calibrated_thresholds(path)
    assert set(levels) == set(STRICTNESS_FAR)
    assert levels["standard"] < levels["strict"] < levels["very-strict"]
    assert levels["standard"] == float(str((manifest_entry(path) or {})["threshold"]))


def test_a_stricter_level_takes_effect_at_once_and_is_audited(
        calibrated_ctx: AppContext) -> None:
    ctx = calibrated_ctx
    assert ctx.matcher.threshold == 0.61
    changes = ctx.apply_settings(ctx.settings.replace(match_strictness="strict"), actor="Ada")
    assert changes == {"recognition.strictness": ["standard", "strict"]}
    assert ctx.matcher.threshold == 0.72
    assert load_settings(ctx.data_dir).match_strictness == "strict"
    assert ctx.library.list_audit(limit=1)[0].action == "settings_changed"


def test_a_level_the_model_lacks_is_refused_and_nothing_changes(
        tmp_path: Path, test_embedder_file: tuple[Path, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = model_with_manifest(tmp_path, test_embedder_file, SINGLE_LEVEL)
    monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
    monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", test_embedder_file[1])
    ctx = AppContext(make_data_dir(tmp_path, match_threshold=None))
    try:
        before = (ctx.data_dir / "settings.json").read_bytes()
        assert ctx.matcher.threshold == 0.6
        with pytest.raises(SettingsError, match="no calibrated threshold for the strict"):
            ctx.apply_settings(ctx.settings.replace(match_strictness="strict"), actor="Ada")
        assert (ctx.data_dir / "settings.json").read_bytes() == before
        assert ctx.settings.match_strictness == "standard" and ctx.matcher.threshold == 0.6
    finally:
        ctx.close()


def test_the_cli_sets_a_level_and_refuses_an_unknown_one(
        tmp_path: Path, calibrated_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    data = make_data_dir(tmp_path, match_threshold=None)
    assert run_cli(data, "config", "set", "recognition.strictness", "very-strict") == 0
    assert load_settings(data).match_strictness == "very-strict"
    assert run_cli(data, "config", "set", "recognition.strictness", "paranoid") != 0
    assert "standard" in capsys.readouterr().err
    assert load_settings(data).match_strictness == "very-strict"
