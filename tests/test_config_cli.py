"""``faceguard config``: every setting from its one declaration, validated, saved, audited."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.library.database import FaceLibrary
from faceguard.settings import OPTIONS, Settings, load_settings


def run(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), *args])


def test_every_setting_is_declared_once_with_key_default_validator_and_help() -> None:
    declared = {f.name for f in dataclasses.fields(Settings)} - {"schema_version", "pin_hash"}
    assert {o.name for o in OPTIONS} == declared
    assert len({o.key for o in OPTIONS}) == len(OPTIONS)
    defaults = Settings()
    for item in OPTIONS:
        assert "." in item.key and item.help
        assert getattr(defaults, item.name) == item.default
        assert item.check(item.default) is None


def test_config_list_get_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert run(data, "config", "list", "--json") == EXIT_OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["key"] for row in rows} >= {"kiosk.name", "recognition.threshold",
                                            "liveness.mode"}
    assert not data.exists()  # listing reads only
    assert run(data, "config", "set", "kiosk.name", "side-door") == EXIT_OK
    assert run(data, "config", "set", "recognition.threshold", "0.81") == EXIT_OK
    capsys.readouterr()
    assert run(data, "config", "get", "kiosk.name") == EXIT_OK
    assert capsys.readouterr().out == "side-door\n"
    settings = load_settings(data)
    assert settings.kiosk_name == "side-door" and settings.match_threshold == 0.81
    assert run(data, "config", "set", "recognition.threshold", "none") == EXIT_OK
    assert load_settings(data).match_threshold is None
    with FaceLibrary.open(data / "faceguard.db") as library:
        changes = [a.details for a in library.list_audit(limit=10)
                   if a.action == "settings_changed"]
    assert any('"kiosk.name": ["kiosk-1", "side-door"]' in c for c in changes)


@pytest.mark.parametrize(("key", "value", "why"), [
    ("recognition.threshold", "2", "must be in [-1.0, 1.0]"),
    ("decisions.votes_required", "9", "must not exceed votes_window"),
    ("recognition.min_face_px", "big", "needs a whole number, not 'big'"),
    ("liveness.mode", "sometimes", "must be one of off, observe, enforce"),
    ("no.such.key", "1", "There is no setting 'no.such.key'"),
])
def test_config_set_refuses_bad_values_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: str,
        why: str) -> None:
    data = tmp_path / "data"
    assert run(data, "config", "set", "kiosk.name", "lobby") == EXIT_OK
    before = (data / "settings.json").read_bytes()
    capsys.readouterr()
    assert run(data, "config", "set", key, value) == EXIT_ERROR
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1
    assert (data / "settings.json").read_bytes() == before


def test_secrets_are_never_printed_or_audited_in_clear(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert run(data, "config", "set", "door.webhook.secret", "s3cr3t-value") == EXIT_OK
    assert run(data, "config", "list") == EXIT_OK
    assert run(data, "config", "get", "door.webhook.secret") == EXIT_OK
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out and "door.webhook.secret = (set)" in out
    assert run(data, "config", "get", "door.webhook.secret", "--show-secret") == EXIT_OK
    assert capsys.readouterr().out == "s3cr3t-value\n"
    assert b"s3cr3t-value" not in (data / "faceguard.db").read_bytes()
    assert load_settings(data).door_webhook_secret == "s3cr3t-value"
