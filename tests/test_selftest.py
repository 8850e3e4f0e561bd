"""`faceguard --self-test` passes with working models and fails clearly without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceguard.cli import main


def test_self_test_passes(test_embedder_file: tuple[Path, str], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    path, digest = test_embedder_file
    monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
    monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", digest)
    assert main(["--data-dir", str(tmp_path), "--self-test"]) == 0
    out = capsys.readouterr().out
    assert "database round trip" in out and out.strip().endswith("self-test passed")


def test_self_test_fails_on_a_damaged_model(test_embedder_file: tuple[Path, str],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = test_embedder_file
    monkeypatch.setenv("FACEGUARD_EMBEDDER", str(path))
    monkeypatch.setenv("FACEGUARD_EMBEDDER_SHA256", "0" * 64)
    assert main(["--data-dir", str(tmp_path), "--self-test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  load models: model file" in out and "self-test FAILED" in out

