"""Student inputs for distillation: every UTKFace image as the product sees it.

Runs the product's own MTCNN and five-point alignment on each training image and stores the
aligned 96x96 RGB crops, in the same order as the teacher cache (sorted file names).
Resumable: finished shards are kept and skipped.

    python -m faceguard.training.prepare --dataset ../shared/datasets/utkface [--out DIR]

Outputs in DIR (default ``<train cache>/student``): ``names.txt``, ``shards/*.npz``, then
``crops.npy`` (N, 96, 96, 3) uint8, ``found.npy`` (N,) bool and ``meta.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceguard.errors import ImageError
from faceguard.paths import train_cache_dir
from faceguard.training.atomic_files import save_npz_atomically
from faceguard.vision.alignment import CROP_SIZE, align_face
from faceguard.vision.image_io import load_image
from faceguard.vision.mtcnn import MtcnnDetector

SHARD_SIZE = 1000
TRAIN_MIN_FACE = 40


def training_image_names(dataset: Path) -> list[str]:
    """The image order shared by the teacher and student caches."""
    return sorted(p.name for p in (dataset / "images").glob("*.jpg"))


def largest_face_crop(detector: MtcnnDetector, image: np.ndarray) -> np.ndarray | None:
    """Aligned crop of the largest face, or None."""
    faces = detector.detect(image)
    return align_face(image, faces[0].landmarks) if faces else None


def prepare(dataset: Path, out: Path, limit: int | None = None) -> dict[str, object]:
    """Build (or finish) the student crop cache; returns the meta record."""
    names = training_image_names(dataset)[:limit]
    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    (out / "names.txt").write_text("\n".join(names) + "\n")
    detector = MtcnnDetector(min_face=TRAIN_MIN_FACE, threads=1)
    started = time.perf_counter()
    for first in range(0, len(names), SHARD_SIZE):
        shard = shards / f"shard_{first // SHARD_SIZE:05d}.npz"
        if shard.exists():
            continue
        batch = names[first:first + SHARD_SIZE]
        crops = np.zeros((len(batch), CROP_SIZE, CROP_SIZE, 3), np.uint8)
        found = np.zeros(len(batch), bool)
        for index, name in enumerate(batch):
            try:
                crop = largest_face_crop(detector, load_image(dataset / "images" / name))
            except ImageError:
                crop = None
            if crop is not None:
                crops[index], found[index] = crop, True
        save_npz_atomically(shard, crops=crops, found=found)
        done = min(first + SHARD_SIZE, len(names))
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"{done}/{len(names)} images, {rate:.1f}/s (this run)", flush=True)
    parts = [np.load(shards / f"shard_{i:05d}.npz")
             for i in range((len(names) + SHARD_SIZE - 1) // SHARD_SIZE)]
    crops_all = np.concatenate([p["crops"] for p in parts])
    found_all = np.concatenate([p["found"] for p in parts])
    np.save(out / "crops.npy", crops_all)
    np.save(out / "found.npy", found_all)
    meta: dict[str, object] = {"count": len(names), "no_face": int((~found_all).sum()),
            "min_face": TRAIN_MIN_FACE, "seconds_this_run": round(time.perf_counter() - started, 1)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description="Align UTKFace with the product's MTCNN.")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(prepare(args.dataset, args.out or train_cache_dir() / "student", args.limit)))


if __name__ == "__main__":
    main()
