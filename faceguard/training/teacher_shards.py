"""The on-disk layout of the UTKFace teacher cache (see :mod:`faceguard.training.teacher`):
``names.txt``, the finished shards ``shards/shard_NNNNN.npz``, ``runs.jsonl`` and the final
arrays with ``meta.json`` joined from the shards. Every file is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.training.atomic_files import (
    save_npy_atomically,
    save_npz_atomically,
    write_text_atomically,
)
from faceguard.training.dlib_teacher import (
    CHIP_PADDING,
    CHIP_SIZE,
    DESCRIPTOR_FILE,
    HOG_UPSAMPLE,
    PREDICTOR_FILE,
)


@dataclass
class TaskResult:
    """Teacher outputs for a run of consecutive images of one shard."""

    shard: int
    offset: int
    vectors: np.ndarray
    mirrored: np.ndarray
    boxes: np.ndarray
    from_hog: np.ndarray
    ok: np.ndarray
    seconds: float


def shard_path(out_dir: Path, shard: int) -> Path:
    """Path of one finished shard."""
    return out_dir / "shards" / f"shard_{shard:05d}.npz"


def shard_done(out_dir: Path, shard: int, names: Sequence[str]) -> bool:
    """True when the shard file exists, loads and holds exactly these names."""
    path = shard_path(out_dir, shard)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = [str(x) for x in data["names"]]
            return stored == list(names) and data["vectors"].shape == (len(names), 128)
    except (OSError, ValueError, KeyError):
        return False


def save_shard(out_dir: Path, shard: int, names: Sequence[str], parts: list[TaskResult]) -> None:
    """Assemble a shard from its task results and save it atomically."""
    parts = sorted(parts, key=lambda p: p.offset)
    save_npz_atomically(
        shard_path(out_dir, shard),
        names=np.array(names),
        vectors=np.concatenate([p.vectors for p in parts]),
        mirrored=np.concatenate([p.mirrored for p in parts]),
        boxes=np.concatenate([p.boxes for p in parts]),
        from_hog=np.concatenate([p.from_hog for p in parts]),
        ok=np.concatenate([p.ok for p in parts]),
        seconds=np.float64(sum(p.seconds for p in parts)),
    )


def write_names(out_dir: Path, names: list[str]) -> None:
    """Write names.txt, or check that an existing one (from an earlier run) matches."""
    path = out_dir / "names.txt"
    text = "".join(f"{name}\n" for name in names)
    if path.is_file():
        if path.read_text(encoding="utf-8") != text:
            raise SystemExit(
                f"{path} lists other images than this run (different dataset or --limit); "
                "use another --out folder or delete that one."
            )
        return
    write_text_atomically(path, text)


def read_runs(out_dir: Path) -> list[dict[str, Any]]:
    """The finished describe loops recorded in runs.jsonl (images, wall seconds, workers)."""
    path = out_dir / "runs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def assemble_cache(
    out_dir: Path,
    names: list[str],
    shards: list[list[str]],
    run_info: dict[str, Any],
    fallback: tuple[float, float, float, float],
) -> dict[str, Any]:
    """Join the shards into the final arrays and write meta.json."""
    import dlib

    keys = ("vectors", "mirrored", "boxes", "from_hog", "ok")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    shard_seconds = 0.0
    for s in range(len(shards)):
        with np.load(shard_path(out_dir, s), allow_pickle=False) as data:
            for key in keys:
                parts[key].append(data[key])
            shard_seconds += float(data["seconds"])
    vectors = np.concatenate(parts["vectors"]).astype(np.float32)
    mirrored = np.concatenate(parts["mirrored"]).astype(np.float32)
    boxes = np.concatenate(parts["boxes"]).astype(np.int32)
    from_hog = np.concatenate(parts["from_hog"]).astype(bool)
    ok = np.concatenate(parts["ok"]).astype(bool)
    assert len(vectors) == len(names)
    save_npy_atomically(out_dir / "utk_teacher.npy", vectors)
    save_npy_atomically(out_dir / "utk_teacher_mirrored.npy", mirrored)
    save_npy_atomically(out_dir / "utk_from_hog.npy", from_hog)
    save_npy_atomically(out_dir / "utk_ok.npy", ok)
    save_npy_atomically(out_dir / "utk_boxes.npy", boxes)
    misses = int(np.sum(ok & ~from_hog))
    count = len(names)
    runs = read_runs(out_dir)
    wall = round(sum(float(r["seconds"]) for r in runs), 1)
    run_images = sum(int(r["images"]) for r in runs)
    meta: dict[str, Any] = {
        "count": count,
        "ok": int(ok.sum()),
        "unreadable": int(count - ok.sum()),
        "hog_misses": misses,
        "hog_miss_rate": round(misses / max(int(ok.sum()), 1), 5),
        "seconds": wall,
        "images_per_second": round(run_images / wall, 3) if wall > 0 else None,
        "runs": len(runs),
        "worker_seconds_all_shards": round(shard_seconds, 1),
        "images_per_second_per_process": round(count / shard_seconds, 3)
        if shard_seconds > 0
        else None,
        "fallback_box_relative": list(fallback),
        "dlib_version": str(dlib.__version__),
        "models": [PREDICTOR_FILE, DESCRIPTOR_FILE],
        "hog_upsample": HOG_UPSAMPLE,
        "chip": {"size": CHIP_SIZE, "padding": CHIP_PADDING},
        "vectors": "raw dlib descriptors, not normalised; zeros where ok is False",
        **run_info,
    }
    write_text_atomically(out_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


