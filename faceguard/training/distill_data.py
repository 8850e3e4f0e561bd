"""The data directory that :mod:`~faceguard.training.distill` reads (see its module doc):
the crops (``crops.npy``, or JPEGs packed by :mod:`~faceguard.training.packing`), the teacher
targets and the usable rows; the deterministic held-out split and the centring of targets.

Standard library and numpy only, plus one of cv2 / torchvision / PIL (imported when a packed
JPEG file has to be decoded).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.training.model import INPUT_SIZE


class DataError(ValueError):
    """The data directory does not follow the contract."""


def _jpeg_decoder() -> Callable[[np.ndarray], np.ndarray]:
    """Return a function decoding JPEG bytes (uint8 1-D) to uint8 (H, W, 3) RGB."""
    try:
        import cv2

        def decode_cv2(buf: np.ndarray) -> np.ndarray:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if img is None:
                raise DataError("a JPEG in crops_jpg.npz does not decode")
            return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

        return decode_cv2
    except ImportError:
        pass
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        def decode_tv(buf: np.ndarray) -> np.ndarray:
            img = decode_jpeg(torch.from_numpy(buf.copy()), mode=ImageReadMode.RGB)
            return img.permute(1, 2, 0).contiguous().numpy()

        return decode_tv
    except ImportError:
        pass
    try:
        from PIL import Image

        def decode_pil(buf: np.ndarray) -> np.ndarray:
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                return np.asarray(im.convert("RGB"))

        return decode_pil
    except ImportError:
        pass
    raise DataError("crops_jpg.npz needs cv2, torchvision or PIL to decode; none is installed")


def decode_jpeg_crops(data: np.ndarray, offsets: np.ndarray, workers: int = 4) -> np.ndarray:
    """Decode concatenated JPEGs (see faceguard.training.packing) to uint8 (N, H, W, 3)."""
    n = len(offsets) - 1
    if n <= 0:
        raise DataError("crops_jpg.npz holds no images")
    if offsets[0] != 0 or offsets[-1] != data.size or np.any(np.diff(offsets) <= 0):
        raise DataError("crops_jpg.npz: offsets do not cut data into non-empty pieces")
    decode = _jpeg_decoder()
    first = decode(data[offsets[0] : offsets[1]])
    out = np.empty((n, *first.shape), dtype=np.uint8)
    out[0] = first

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            img = decode(data[offsets[i] : offsets[i + 1]])
            if img.shape != first.shape:
                raise DataError(f"crops_jpg.npz: image {i} is {img.shape}, not {first.shape}")
            out[i] = img

    workers = max(1, workers)
    bounds = np.linspace(1, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work, int(a), int(b)) for a, b in itertools.pairwise(bounds)]:
            f.result()
    return out


@dataclass
class FaceData:
    """Crops and raw teacher targets of the usable rows."""

    crops: np.ndarray  # uint8 (N, 96, 96, 3) RGB
    targets: np.ndarray  # float32 (N, D)
    targets_mirrored: np.ndarray | None  # float32 (N, D) or None


def load_crops(data_dir: Path, workers: int = 4) -> np.ndarray:
    """uint8 (N, 96, 96, 3) RGB crops from crops.npy (memory-mapped) or crops_jpg.npz."""
    crops: np.ndarray
    if (data_dir / "crops.npy").exists():
        crops = np.load(data_dir / "crops.npy", mmap_mode="r")
    elif (data_dir / "crops_jpg.npz").exists():
        with np.load(data_dir / "crops_jpg.npz") as z:
            crops = decode_jpeg_crops(
                np.ascontiguousarray(z["data"], dtype=np.uint8),
                np.asarray(z["offsets"], dtype=np.int64),
                workers,
            )
    else:
        raise DataError(f"{data_dir} has neither crops.npy nor crops_jpg.npz")
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (
        INPUT_SIZE,
        INPUT_SIZE,
        3,
    ):
        raise DataError(f"crops must be uint8 (N, 96, 96, 3), got {crops.dtype} {crops.shape}")
    return crops


def load_data(data_dir: Path, workers: int = 4) -> FaceData:
    """Load and check a data directory; keep valid rows with finite, non-zero targets."""
    crops = load_crops(data_dir, workers)
    n = crops.shape[0]
    if not (data_dir / "targets.npy").exists():
        raise DataError(f"{data_dir} has no targets.npy")
    targets = np.load(data_dir / "targets.npy")
    mirrored_path = data_dir / "targets_mirrored.npy"
    mirrored = np.load(mirrored_path) if mirrored_path.exists() else None
    for name, arr in (("targets", targets), ("targets_mirrored", mirrored)):
        if arr is not None and (arr.ndim != 2 or arr.shape[0] != n):
            raise DataError(f"{name}.npy must be (N={n}, D), got {arr.shape}")
    if mirrored is not None and mirrored.shape != targets.shape:
        raise DataError("targets.npy and targets_mirrored.npy differ in shape")
    keep = np.ones(n, dtype=bool)
    if (data_dir / "valid.npy").exists():
        valid = np.load(data_dir / "valid.npy")
        if valid.shape != (n,):
            raise DataError(f"valid.npy must be (N={n},), got {valid.shape}")
        keep &= valid.astype(bool)
    for arr in (targets, mirrored):
        if arr is not None:
            a = arr.astype(np.float32)
            keep &= np.isfinite(a).all(axis=1) & (np.linalg.norm(a, axis=1) > 1e-6)
    if keep.sum() < 2:
        raise DataError(f"only {int(keep.sum())} usable rows in {data_dir}")
    idx = np.flatnonzero(keep)
    return FaceData(
        crops=np.ascontiguousarray(crops[idx]),
        targets=targets[idx].astype(np.float32),
        targets_mirrored=None if mirrored is None else mirrored[idx].astype(np.float32),
    )


def split_indices(n: int, seed: int, fraction: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) row indices; at least one held-out row."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centre_targets(
    targets: np.ndarray, mirrored: np.ndarray | None, train_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Normalise, subtract the training split's mean normalised target, renormalise."""
    t = _l2n(targets.astype(np.float64))
    pool = t[train_idx]
    if mirrored is not None:
        pool = np.concatenate([pool, _l2n(mirrored[train_idx].astype(np.float64))])
    mean = pool.mean(axis=0).astype(np.float32)
    return apply_centre(targets, mean), apply_centre(mirrored, mean), mean


def apply_centre(targets: np.ndarray | None, mean: np.ndarray) -> Any:
    """normalise(normalise(targets) - mean) as float32 (None stays None)."""
    if targets is None:
        return None
    t = _l2n(targets.astype(np.float64))
    return _l2n(t - mean.astype(np.float64)).astype(np.float32)
