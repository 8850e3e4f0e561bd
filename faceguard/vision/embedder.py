"""The face embedder: aligned 96x96 RGB crops in, L2-normalised float32 vectors out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceguard.errors import ModelError
from faceguard.settings import DEFAULT_MODEL_FILE
from faceguard.vision.alignment import CROP_SIZE
from faceguard.vision.onnx_model import OnnxModel, TensorSpec, default_model_path

BATCH_SIZE = 64


class Embedder(OnnxModel):
    """Any ONNX network with input ``input`` (N, 3, 96, 96) and output ``embedding`` (N, D).

    Input convention: RGB, NCHW, pixel values mapped as (x - 127.5) / 128. With
    ``mirror=True`` the face and its mirror image are embedded and averaged (more accurate,
    twice the cost).
    """

    inputs = (TensorSpec("input", (None, 3, CROP_SIZE, CROP_SIZE)),)
    outputs = (TensorSpec("embedding", (None, None)),)

    def __init__(self, path: str | Path | None = None, *, sha256: str | None = None,
                 threads: int = 1, mirror: bool = False, verify: bool = True) -> None:
        super().__init__(path or default_model_path(DEFAULT_MODEL_FILE), sha256=sha256,
                         threads=threads, verify=verify)
        self.mirror = mirror
        dims = self.session.get_outputs()[0].shape
        if not isinstance(dims[1], int) or dims[1] <= 0:
            raise ModelError(f"{self.path.name}: embedding size is not fixed ({dims})")
        self.dimension = int(dims[1])
        self.model_id = f"{self.path.stem}@{self.sha256[:12]}" + ("+mirror" if mirror else "")

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96, 3) uint8 RGB crops (or one (96, 96, 3) crop) -> (N, D) unit vectors."""
        batch = np.asarray(crops)
        single = batch.ndim == 3
        if single:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected crops of shape (N, {CROP_SIZE}, {CROP_SIZE}, 3), "
                             f"got {batch.shape}")
        if len(batch) == 0:
            return np.empty((0, self.dimension), np.float32)
        vectors = np.concatenate([self._forward(batch[i:i + BATCH_SIZE])
                                  for i in range(0, len(batch), BATCH_SIZE)])
        return vectors[0] if single else vectors

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        tensor = (batch.astype(np.float32) - 127.5) / 128.0
        tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        raw = self.run({"input": tensor})["embedding"]
        if self.mirror:
            mirrored = np.ascontiguousarray(tensor[:, :, :, ::-1])
            raw = raw + self.run({"input": mirrored})["embedding"]
        return l2_normalise(raw.astype(np.float32))


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32)
