"""Upgrading a kiosk to a new embedding model (issue 14): a library enrolled with the old
model is re-embedded from its stored crops by `faceguard reembed`; a real process killed
with SIGKILL part-way keeps the batches it finished, and running it again completes the
rest. Nothing is lost: every template, crop and person is still there, every vector is the
new model's embedding of its own crop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceguard.library.database import FaceLibrary
from faceguard.vision.embedder import Embedder
from faceguard.vision.image_io import decode_jpeg, encode_jpeg
from faceguard.vision.onnx_model import default_model_path, file_sha256
from tests.conftest import REPO, make_data_dir

PEOPLE, PER_PERSON = 50, 8  # 400 templates: 7 batches of 64


def _crops(seed: int) -> list[np.ndarray]:
    """Smooth synthetic 96x96 "faces": a per-person pattern, a little noise per photo."""
    rng = np.random.default_rng(seed)
    out = []
    y, x = np.mgrid[:96, :96] / 96.0
    for _person in range(PEOPLE):
        a, b, c = rng.uniform(1, 6, size=3)
        base = np.stack([np.sin(a * x + b * y), np.cos(b * x - c * y), np.sin(c * x * y + a)], -1)
        for _photo in range(PER_PERSON):
            noisy = base + rng.normal(0, 0.05, base.shape)
            out.append(np.clip(127 + 100 * noisy, 0, 255).astype(np.uint8))
    return out


def _reembed(data: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "faceguard", "--data-dir", str(data), "reembed"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _state(path: Path) -> tuple[dict[str, int], dict[int, bytes], dict[int, np.ndarray]]:
    library = FaceLibrary.open(path)
    try:
        assert library.integrity_check() == []
        templates = library.list_templates()
        crops = {t.id: library.get_template_crop(t.id) for t in templates}
        vectors = {t.id: library.get_template_vector(t.id) for t in templates}
        return library.model_ids(), crops, vectors
    finally:
        library.close()


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_reembed_killed_part_way_resumes_and_loses_nothing(
        tmp_path: Path, test_embedder_file: tuple[Path, str]) -> None:
    old_path, old_sha = test_embedder_file  # the "old model" the library was enrolled with
    old = Embedder(old_path, sha256=old_sha)
    new_path = default_model_path("lite_mobilefacenet_96.onnx")  # the shipped model
    new = Embedder(new_path, sha256=file_sha256(new_path))
    data = make_data_dir(tmp_path)
    library = FaceLibrary.open(data / "faceguard.db")
    crops = _crops(seed=3)
    jpegs = [encode_jpeg(crop) for crop in crops]
    decoded = np.stack([decode_jpeg(jpeg) for jpeg in jpegs])
    old_vectors = old.embed(decoded)
    for person in range(PEOPLE):
        pid = library.add_person(f"Person {person:02d}").id
        for photo in range(PER_PERSON):
            row = person * PER_PERSON + photo
            library.add_template(pid, old_vectors[row], old.model_id, 0.9, jpegs[row])
    library.close()
    _, crops_before, _ = _state(data / "faceguard.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGUARD_EMBEDDER")}
    env["OMP_NUM_THREADS"] = "1"

    child = _reembed(data, env)  # first run: killed after its first batch
    assert child.stderr is not None
    line = child.stderr.readline()
    while line and "re-embedding templates" not in line:
        line = child.stderr.readline()
    assert "re-embedding templates: 64/400" in line, line
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    models, crops_mid, vectors_mid = _state(data / "faceguard.db")
    done = models.get(new.model_id, 0)
    assert 64 <= done < PEOPLE * PER_PERSON  # finished batches kept, the kill landed early
    assert done + models[old.model_id] == PEOPLE * PER_PERSON
    assert crops_mid == crops_before  # every crop byte for byte

    child = _reembed(data, env)  # second run: resumes with the rest, progress on stderr
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert f"re-embedded {PEOPLE * PER_PERSON - done} of {PEOPLE * PER_PERSON - done}" in out
    assert "re-embedding templates:" in err

    models, crops_after, vectors_after = _state(data / "faceguard.db")
    assert models == {new.model_id: PEOPLE * PER_PERSON}
    assert crops_after == crops_before
    ids = sorted(crops_after)
    expected = new.embed(np.stack([decode_jpeg(crops_after[i]) for i in ids]))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = np.stack([vectors_after[i] for i in ids])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for template_id, vector in vectors_mid.items():  # batches done before the kill: kept
        if not np.allclose(vector, old_vectors[ids.index(template_id)]
                           / np.linalg.norm(old_vectors[ids.index(template_id)]), atol=1e-5):
            np.testing.assert_allclose(vector, vectors_after[template_id], atol=1e-6)
