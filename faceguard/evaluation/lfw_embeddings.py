"""One vector per LFW image from an embed function (the pipeline under test), cached per
model under ``train_cache_dir()/eval`` so a re-run is instant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import ImageError
from faceguard.evaluation.lfw_pairs import LfwSubset
from faceguard.paths import train_cache_dir
from faceguard.vision.image_io import load_image

SAVE_EVERY = 250
STATUS_NO_FACE, STATUS_FACE, STATUS_FALLBACK = 0, 1, 2

EmbedFn = Callable[[np.ndarray], np.ndarray | None]
ProgressFn = Callable[[str, int, int], None]
NoteFn = Callable[[str], None]


def no_progress(label: str, done: int, total: int) -> None:
    """Progress sink that ignores everything."""


def no_note(message: str) -> None:
    """Note sink that ignores everything."""


@dataclass
class Embeddings:
    """One vector per subset image (zeros where no face) and how it was obtained."""

    model_id: str
    vectors: np.ndarray
    status: np.ndarray
    computed: int = 0

    @property
    def has_face(self) -> np.ndarray:
        """True where the image has a vector."""
        return self.status != STATUS_NO_FACE


def cache_path(cache_key: str, cache_dir: Path | None = None) -> Path:
    """The .npz cache of one embedder's LFW vectors."""
    folder = cache_dir if cache_dir is not None else train_cache_dir() / "eval"
    return folder / f"lfw_{re.sub(r'[^A-Za-z0-9._+-]', '_', cache_key)}.npz"


def load_cache(path: Path, model_id: str) -> dict[str, tuple[np.ndarray, int]]:
    """Cached (vector, status) per image name; empty when absent, unreadable or stale."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model_id"]) != model_id:
                return {}
            names = [str(n) for n in data["names"]]
            vectors, status = data["vectors"], data["status"]
            return {name: (vectors[i], int(status[i])) for i, name in enumerate(names)}
    except (OSError, ValueError, KeyError):
        return {}


def save_cache(path: Path, model_id: str, entries: dict[str, tuple[np.ndarray, int]]) -> None:
    """Write the cache atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(entries)
    dims = {entries[n][0].shape[0] for n in names if entries[n][1] != STATUS_NO_FACE}
    dim = dims.pop() if dims else 1
    vectors = np.zeros((len(names), dim), np.float32)
    for i, name in enumerate(names):
        if entries[name][1] != STATUS_NO_FACE:
            vectors[i] = entries[name][0]
    temporary = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with open(temporary, "wb") as handle:
        np.savez(handle, model_id=np.array(model_id), names=np.array(names, dtype=str),
                 vectors=vectors, status=np.array([entries[n][1] for n in names], np.int8))
    os.replace(temporary, path)


def embed_subset(subset: LfwSubset, embed_image: EmbedFn, *, model_id: str,
                 cache_key: str | None = None, cache_dir: Path | None = None,
                 progress: ProgressFn = no_progress, note: NoteFn = no_note) -> Embeddings:
    """Embed each image of the subset once, reusing and extending the on-disk cache.

    ``embed_image`` maps an RGB image to a unit vector, or None when it has no face. If it
    has a true ``used_fallback`` attribute after a call, that image is marked as embedded
    from a fallback box.
    """
    path = cache_path(cache_key or model_id, cache_dir)
    entries = load_cache(path, model_id)
    todo = [name for name in subset.images if name not in entries]
    note(f"{model_id}: {len(subset.images) - len(todo)} of {len(subset.images)} images cached "
         f"in {path}" + (f"; embedding {len(todo)}" if todo else ""))
    label = f"embedding ({model_id})"
    for done, name in enumerate(todo, start=1):
        try:
            vector = embed_image(load_image(subset.root / name))
        except ImageError as error:
            note(f"{error}: counted as an image without a face")
            vector = None
        if vector is None:
            entries[name] = (np.zeros(1, np.float32), STATUS_NO_FACE)
        else:
            fallback = bool(getattr(embed_image, "used_fallback", False))
            entries[name] = (np.asarray(vector, np.float32).ravel(),
                             STATUS_FALLBACK if fallback else STATUS_FACE)
        if done % SAVE_EVERY == 0:
            save_cache(path, model_id, entries)
        progress(label, done, len(todo))
    if todo:
        save_cache(path, model_id, entries)
    status = np.array([entries[name][1] for name in subset.images], np.int8)
    found = [entries[name][0] for name in subset.images if entries[name][1] != STATUS_NO_FACE]
    dim = found[0].shape[0] if found else 1
    vectors = np.zeros((len(subset.images), dim), np.float32)
    for i, name in enumerate(subset.images):
        if status[i] != STATUS_NO_FACE:
            vectors[i] = entries[name][0]
    return Embeddings(model_id, vectors, status, len(todo))
