"""Distillation teacher: a resumable cache of dlib's ResNet vectors of every UTKFace image.

The teacher itself (HOG detector, 5-point landmarks, ResNet descriptor) is
:class:`~faceguard.training.dlib_teacher.DlibTeacher`.

Build the UTKFace cache (resumable; finished shards are skipped on restart)::

    python -m faceguard.training.teacher utkface --dataset ../shared/datasets/utkface \
        --out DIR --workers 2

Outputs in DIR: ``names.txt``, ``fallback_box.json``, ``shards/shard_NNNNN.npz`` and, once
every shard is done, ``utk_teacher.npy`` (N, 128 float32, raw dlib vectors),
``utk_teacher_mirrored.npy``, ``utk_from_hog.npy``, ``utk_ok.npy``, ``utk_boxes.npy`` and
``meta.json``.

The cache's files are written by :mod:`faceguard.training.teacher_shards`; this module runs
the job in worker processes and holds its command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.paths import train_cache_dir
from faceguard.training.atomic_files import write_text_atomically
from faceguard.training.dlib_teacher import DESCRIPTOR_DIM, DlibTeacher, absolute_box, median_box
from faceguard.training.teacher_shards import (
    TaskResult,
    assemble_cache,
    save_shard,
    shard_done,
    write_names,
)

SHARD_SIZE = 500
FALLBACK_SAMPLE = 500
TASK_SIZE = 20
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def read_rgb(path: Path) -> np.ndarray | None:
    """An 8-bit RGB image from a file, or None when it cannot be read."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3:
        return None
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def limit_threads() -> None:
    """One BLAS/OpenMP/OpenCV thread in this process (set before spawning workers)."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a project dependency
        pass


_WORKER_TEACHER: DlibTeacher | None = None


def _worker_init() -> None:
    """Pool initialiser: one thread, one DlibTeacher per process."""
    global _WORKER_TEACHER
    limit_threads()
    _WORKER_TEACHER = DlibTeacher()


def _teacher() -> DlibTeacher:
    """This worker's teacher (created on first use outside a pool)."""
    global _WORKER_TEACHER
    if _WORKER_TEACHER is None:
        _WORKER_TEACHER = DlibTeacher()
    return _WORKER_TEACHER


def _detect_task(paths: list[str]) -> list[tuple[float, float, float, float] | None]:
    """HOG boxes relative to image size (left/W, top/H, right/W, bottom/H) for some files."""
    teacher = _teacher()
    out: list[tuple[float, float, float, float] | None] = []
    for path in paths:
        image = read_rgb(Path(path))
        box = None if image is None else teacher.detect(image)
        if box is None or image is None:
            out.append(None)
            continue
        h, w = image.shape[:2]
        out.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    return out


def _describe_task(
    args: tuple[int, int, list[str], tuple[float, float, float, float]],
) -> TaskResult:
    """Read and describe some images; the fallback box is used where HOG finds no face."""
    shard, offset, paths, fallback_rel = args
    teacher = _teacher()
    n = len(paths)
    vectors = np.zeros((n, DESCRIPTOR_DIM), dtype=np.float32)
    mirrored = np.zeros((n, DESCRIPTOR_DIM), dtype=np.float32)
    boxes = np.full((n, 4), -1, dtype=np.int32)
    from_hog = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    start = time.perf_counter()
    for i, path in enumerate(paths):
        image = read_rgb(Path(path))
        if image is None:
            continue
        h, w = image.shape[:2]
        result = teacher.describe(image, fallback_box=absolute_box(fallback_rel, w, h))
        if result is None:  # cannot happen with a fallback box; kept as a guard
            continue
        vectors[i] = result.vector
        mirrored[i] = result.vector_mirrored
        boxes[i] = result.box
        from_hog[i] = result.from_hog
        ok[i] = True
    seconds = time.perf_counter() - start
    return TaskResult(shard, offset, vectors, mirrored, boxes, from_hog, ok, seconds)


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(offset, slice) pairs of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _fallback_box(
    out_dir: Path, image_dir: Path, names: list[str], pool: Any
) -> tuple[float, float, float, float]:
    """Median HOG box (relative) over an evenly spaced sample; cached in fallback_box.json."""
    path = out_dir / "fallback_box.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        rel = stored["box_relative"]
        return (float(rel[0]), float(rel[1]), float(rel[2]), float(rel[3]))
    count = min(FALLBACK_SAMPLE, len(names))
    picks = sorted({int(i) for i in np.linspace(0, len(names) - 1, count)})
    paths = [str(image_dir / names[i]) for i in picks]
    start = time.perf_counter()
    found: list[tuple[float, float, float, float]] = []
    tasks = [list(chunk) for _, chunk in _chunks(paths, TASK_SIZE)]
    for part in pool.imap(_detect_task, tasks):
        found.extend(box for box in part if box is not None)
    if not found:
        raise SystemExit(f"HOG found no face in the {len(paths)} sample images; no fallback box.")
    rel = median_box(found)
    info = {
        "box_relative": rel,
        "convention": "dlib rectangle (left, top, right, bottom) divided by (W, H, W, H)",
        "sample_images": len(paths),
        "sample_hog_found": len(found),
        "sample": "evenly spaced over names.txt",
        "method": "median centre and median width/height of the HOG boxes found",
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_text_atomically(path, json.dumps(info, indent=2) + "\n")
    return rel


def build_utkface_cache(
    dataset: Path, out_dir: Path, workers: int = 2, limit: int | None = None
) -> dict[str, Any]:
    """Build (or resume) the teacher cache for UTKFace; returns the meta information."""
    import multiprocessing

    from tqdm import tqdm

    image_dir = dataset / "images"
    if not image_dir.is_dir():
        raise SystemExit(f"No images folder in {dataset}")
    names = sorted(p.name for p in image_dir.glob("*.jpg"))
    if limit is not None:
        names = names[:limit]
    if not names:
        raise SystemExit(f"No .jpg images in {image_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "shards").mkdir(exist_ok=True)
    write_names(out_dir, names)

    shards = [list(chunk) for _, chunk in _chunks(names, SHARD_SIZE)]
    pending = [
        s for s, shard_names in enumerate(shards) if not shard_done(out_dir, s, shard_names)
    ]
    pending_images = sum(len(shards[s]) for s in pending)
    print(
        f"{len(names)} images in {len(shards)} shards; {len(shards) - len(pending)} done, "
        f"{len(pending)} to do ({pending_images} images) with {workers} worker(s) -> {out_dir}",
        flush=True,
    )

    limit_threads()  # inherited by the spawned workers
    context = multiprocessing.get_context("spawn")
    run_start = time.perf_counter()
    worker_seconds = 0.0
    with context.Pool(processes=max(1, workers), initializer=_worker_init) as pool:
        fallback = _fallback_box(out_dir, image_dir, names, pool)
        print(f"fallback box (relative l, t, r, b): {[round(v, 4) for v in fallback]}", flush=True)
        tasks = [
            (s, offset, [str(image_dir / n) for n in chunk], fallback)
            for s in pending
            for offset, chunk in _chunks(shards[s], TASK_SIZE)
        ]
        collected: dict[int, list[TaskResult]] = {s: [] for s in pending}
        done_images = {s: 0 for s in pending}
        loop_start = time.perf_counter()
        with tqdm(
            total=pending_images, unit="img", smoothing=0.05, mininterval=5.0, file=sys.stderr
        ) as bar:
            for part in pool.imap_unordered(_describe_task, tasks):
                collected[part.shard].append(part)
                done_images[part.shard] += len(part.ok)
                worker_seconds += part.seconds
                bar.update(len(part.ok))
                if done_images[part.shard] == len(shards[part.shard]):
                    save_shard(out_dir, part.shard, shards[part.shard], collected.pop(part.shard))
                    elapsed = time.perf_counter() - loop_start
                    bar.write(
                        f"shard {part.shard:05d} saved; {bar.n}/{pending_images} images, "
                        f"{bar.n / max(elapsed, 1e-9):.2f} images/s"
                    )
        loop_seconds = time.perf_counter() - loop_start
    if pending_images:
        with (out_dir / "runs.jsonl").open("a", encoding="utf-8") as log:
            record = {
                "images": pending_images,
                "seconds": round(loop_seconds, 2),
                "workers": workers,
            }
            log.write(json.dumps(record) + "\n")
    return assemble_cache(
        out_dir,
        names,
        shards,
        run_info={
            "workers": workers,
            "images_this_run": pending_images,
            "seconds_this_run": round(time.perf_counter() - run_start, 1),
            "seconds_describing_this_run": round(loop_seconds, 1),
            "images_per_second_this_run": round(pending_images / loop_seconds, 3)
            if pending_images and loop_seconds > 0
            else None,
        },
        fallback=fallback,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m faceguard.training.teacher utkface ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m faceguard.training.teacher",
        description="Cache dlib ResNet teacher vectors for distillation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    utk = sub.add_parser("utkface", help="describe every UTKFace image (resumable, sharded)")
    utk.add_argument("--dataset", type=Path, required=True, help="UTKFace folder (has images/)")
    utk.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: $FACEGUARD_TRAIN_CACHE or ~/.cache/faceguard-train, "
        "then /teacher)",
    )
    utk.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    utk.add_argument("--limit", type=int, default=None, help="only the first N images (tests)")
    args = parser.parse_args(argv)
    out_dir: Path = args.out if args.out is not None else train_cache_dir() / "teacher"
    meta = build_utkface_cache(args.dataset, out_dir, workers=args.workers, limit=args.limit)
    print(json.dumps(meta, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
