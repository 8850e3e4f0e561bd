"""The ONNX model base class: checksum, shape checks, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceguard.errors import ModelError
from faceguard.paths import models_dir
from faceguard.vision.embedder import Embedder
from faceguard.vision.onnx_model import file_sha256

MANIFEST = json.loads((models_dir() / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST["models"]))
def test_bundled_models_match_manifest_and_card(name: str) -> None:
    entry = MANIFEST["models"][name]
    path = models_dir() / name
    assert file_sha256(path) == entry["sha256"]
    card = (models_dir() / entry["card"]).read_text()
    assert entry["sha256"] in card, f"{entry['card']} must state the SHA-256 of {name}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Embedder(tmp_path / "nope.onnx", sha256="0" * 64)


def test_wrong_checksum(test_embedder_file: tuple[Path, str]) -> None:
    path, _ = test_embedder_file
    with pytest.raises(ModelError, match="damaged or not the expected version"):
        Embedder(path, sha256="0" * 64)


def test_unlisted_model_refused(test_embedder_file: tuple[Path, str]) -> None:
    path, _ = test_embedder_file
    with pytest.raises(ModelError, match="not listed"):
        Embedder(path)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="cannot be loaded"):
        Embedder(path, sha256=file_sha256(path))


def test_wrong_input_shape_is_refused(tmp_path: Path) -> None:
    from faceguard.vision.mtcnn import _RNet

    pnet = models_dir() / "mtcnn_pnet.onnx"
    with pytest.raises(ModelError, match="shape"):
        _RNet(pnet, sha256=file_sha256(pnet))


def test_embedder_outputs_unit_vectors(test_embedder_file: tuple[Path, str]) -> None:
    path, digest = test_embedder_file
    embedder = Embedder(path, sha256=digest, threads=1)
    crops = np.random.default_rng(0).integers(0, 255, (70, 96, 96, 3), dtype=np.uint8)
    vectors = embedder.embed(crops)
    assert vectors.shape == (70, 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    single = embedder.embed(crops[3])
    np.testing.assert_allclose(single, vectors[3], atol=1e-6)
    assert embedder.model_id.startswith("test_embedder@")
    assert embedder.threads == 1
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((2, 64, 64, 3), np.uint8))
