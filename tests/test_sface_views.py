"""The resumable teacher-views job, with a stand-in embedder (no model, no dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import FaceGuardError
from faceguard.training.teacher_views import chunk_path, load_teacher_views, run_views
from faceguard.training.views import CANVAS_SIZE


def _fake_embed(crops: np.ndarray) -> np.ndarray:
    """Mean colour plus a constant, normalised: deterministic, 128-d."""
    flat = crops.reshape(len(crops), -1, 3).mean(axis=1)
    vectors = np.concatenate([flat, np.ones((len(crops), 125))], axis=1)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _cache(tmp_path: Path, count: int = 10) -> Path:
    rng = np.random.default_rng(0)
    canvases = rng.integers(0, 256, (count, CANVAS_SIZE, CANVAS_SIZE, 3), dtype=np.uint8)
    found = np.ones(count, bool)
    found[3] = False
    np.save(tmp_path / "canvases.npy", canvases)
    np.save(tmp_path / "found.npy", found)
    return tmp_path


def test_run_resume_and_load(tmp_path: Path) -> None:
    out = _cache(tmp_path)
    assert run_views(out, 3, 0, _fake_embed, "sha", chunk=4) == 9
    vectors, done = load_teacher_views(out)
    assert vectors.shape == (10, 3, 128) and done.sum() == 27
    assert not done[3].any() and np.all(vectors[3] == 0)
    assert np.allclose(np.linalg.norm(vectors[done], axis=1), 1.0, atol=2e-3)
    # a lost chunk (killed mid-write) is recomputed, identical; the others are kept
    lost = chunk_path(out / "views", 2, 1)
    before = np.load(lost)
    lost.unlink()
    assert run_views(out, 3, 0, _fake_embed, "sha", chunk=4) == 1
    assert np.array_equal(np.load(lost), before)
    # more views later: only the new ones are computed
    assert run_views(out, 4, 0, _fake_embed, "sha", chunk=4) == 3
    assert json.loads((out / "views" / "meta.json").read_text())["views"] == 4


def test_a_different_seed_is_refused(tmp_path: Path) -> None:
    out = _cache(tmp_path)
    run_views(out, 1, 0, _fake_embed, "sha", chunk=4)
    with pytest.raises(FaceGuardError, match="seed"):
        run_views(out, 1, 1, _fake_embed, "sha", chunk=4)
