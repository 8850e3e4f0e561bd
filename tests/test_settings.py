"""Typed settings: defaults, validation, schema migration, atomic save."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import pytest

from faceguard.paths import DATA_DIR_ENV
from faceguard.settings import (
    DEFAULT_MATCH_MARGIN,
    DEFAULT_MATCH_THRESHOLD,
    SCHEMA_VERSION,
    SETTINGS_FILE,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
    settings_path,
)


def write_raw(folder: Path, data: object) -> Path:
    path = folder / SETTINGS_FILE
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_defaults() -> None:
    s = Settings()
    assert s.schema_version == SCHEMA_VERSION
    assert s.source == "0" and s.min_face_px == 60 and s.repeat_window_s == 300
    assert (s.votes_required, s.votes_window) == (3, 5)
    assert (s.match_threshold, s.match_margin) == (DEFAULT_MATCH_THRESHOLD, DEFAULT_MATCH_MARGIN)
    assert 0 < s.threshold_far <= 1 and s.threshold_note
    assert s.pin_hash is None


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == Settings()
    assert not (tmp_path / SETTINGS_FILE).exists()


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "data"
    changed = Settings().replace(kiosk_name="Front door", source="rtsp://cam/1", pin_hash="abc")
    path = save_settings(changed, folder)
    assert path == folder / SETTINGS_FILE
    assert load_settings(folder) == changed
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["kiosk_name"] == "Front door"
    assert sorted(p.name for p in folder.iterdir()) == [SETTINGS_FILE]  # no temp files left


def test_data_dir_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert settings_path() == tmp_path / SETTINGS_FILE
    save_settings(Settings().replace(min_face_px=80))
    assert load_settings().min_face_px == 80


def test_settings_are_immutable_and_validated() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.kiosk_name = "x"  # type: ignore[misc]
    with pytest.raises(SettingsError, match="match_threshold"):
        s.replace(match_threshold=1.5)
    with pytest.raises(SettingsError, match="votes_required"):
        s.replace(votes_required=6)
    with pytest.raises(SettingsError, match="model_file"):
        s.replace(model_file="../evil.onnx")
    with pytest.raises(SettingsError, match="min_face_px"):
        s.replace(min_face_px=True)
    assert isinstance(s.replace(match_threshold=1).match_threshold, float)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2, 3]", "\udcff"],
    ids=["corrupt", "not-an-object", "bad-encoding"],
)
def test_unreadable_file_gives_defaults_with_warning_and_is_not_touched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / SETTINGS_FILE
    raw = content.encode("utf-8", "surrogateescape")
    path.write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="faceguard.settings"):
        assert load_settings(tmp_path) == Settings()
    assert "using defaults" in caplog.text
    assert path.read_bytes() == raw


def test_bad_values_fall_back_to_defaults_and_unknown_keys_are_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_raw(
        tmp_path,
        {
            "schema_version": SCHEMA_VERSION,
            "kiosk_name": "Lobby",
            "match_threshold": "high",
            "match_margin": -0.2,
            "min_face_px": 72.5,
            "repeat_window_s": 60,
            "threshold_far": 0.0,
            "source": "",
            "favourite_colour": "blue",
        },
    )
    with caplog.at_level(logging.WARNING, logger="faceguard.settings"):
        loaded = load_settings(tmp_path)
    assert loaded.kiosk_name == "Lobby" and loaded.repeat_window_s == 60
    defaults = Settings()
    for name in ("match_threshold", "match_margin", "min_face_px", "threshold_far", "source"):
        assert getattr(loaded, name) == getattr(defaults, name)
        assert name in caplog.text
    assert "favourite_colour" in caplog.text


def test_inconsistent_votes_fall_back_together(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_raw(tmp_path, {"schema_version": SCHEMA_VERSION, "votes_required": 9, "votes_window": 4})
    with caplog.at_level(logging.WARNING, logger="faceguard.settings"):
        loaded = load_settings(tmp_path)
    assert (loaded.votes_required, loaded.votes_window) == (3, 5)
    assert "votes_required" in caplog.text


def test_unversioned_file_is_migrated(tmp_path: Path) -> None:
    write_raw(tmp_path, {"threshold": 0.61, "margin": 0.07, "camera": 1, "kiosk_name": "Gate"})
    loaded = load_settings(tmp_path)
    assert (loaded.match_threshold, loaded.match_margin) == (0.61, 0.07)
    assert loaded.source == "1" and loaded.kiosk_name == "Gate"
    assert loaded.schema_version == SCHEMA_VERSION


def test_newer_schema_is_read_as_far_as_understood(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_raw(tmp_path, {"schema_version": SCHEMA_VERSION + 5, "kiosk_name": "Future", "x": 1})
    with caplog.at_level(logging.WARNING, logger="faceguard.settings"):
        loaded = load_settings(tmp_path)
    assert loaded.kiosk_name == "Future"
    assert "newer FaceGuard" in caplog.text


def test_failed_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(Settings().replace(kiosk_name="Before"), tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SettingsError, match="No space left"):
        save_settings(Settings().replace(kiosk_name="After"), tmp_path)
    monkeypatch.undo()
    assert load_settings(tmp_path).kiosk_name == "Before"
    assert sorted(os.listdir(tmp_path)) == [SETTINGS_FILE]


def test_save_into_a_file_path_gives_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(SettingsError, match="Cannot save settings"):
        save_settings(Settings(), blocker)
