"""SFace teacher vectors for K augmented views of every UTKFace face: a resumable CPU job.

Stage 1 (canvases): the product's MTCNN (min face 40, largest face, as
:mod:`faceguard.training.prepare`) finds five landmarks in every image, sorted by file name,
and :func:`faceguard.training.views.align_canvas` stores the face on the 112 ArcFace template
with a 16-pixel margin (144x144 RGB uint8). Stage 2 (views): for view v = 0..K-1 and each
chunk of faces, :func:`faceguard.training.views.teacher_view` draws the view (0: clean, 1:
mirrored, others augmented, deterministic from (seed, face, view)) and SFace embeds it.

    nohup nice -n 19 python -m faceguard.training.teacher_views \
        --dataset ../shared/datasets/utkface --views 8 >> <cache>/sface_views/job.log 2>&1 &

Every shard or chunk is written to a temporary file and renamed, so the job survives
``kill -9``; rerun the same command to resume (finished files are skipped). Views run in
the outer loop: a stopped job leaves every face with the first views done, and ``--views``
may be raised later to add more.

Layout of ``--out`` (default ``<train cache>/sface_views``)::

    names.txt                      image file names, the face index order
    canvas/shards/shard_NNNNN.npz  stage 1 parts
    canvases.npy                   (N, 144, 144, 3) uint8 (open with mmap_mode="r")
    found.npy, landmarks.npy       (N,) bool, (N, 5, 2) float32 (in the source image)
    views/meta.json                seed, views version, teacher file SHA-256, chunk size
    views/view_VVV/chunk_CCCCC.npy (n, 128) float16 L2-normalised SFace vectors
    views/progress.json            views done, rate, last update
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError, ImageError
from faceguard.paths import train_cache_dir
from faceguard.training.atomic_files import (
    save_npy_atomically,
    save_npz_atomically,
    write_json_atomically,
)
from faceguard.training.prepare import TRAIN_MIN_FACE, training_image_names
from faceguard.training.sface import SFACE_DIM, SFaceTeacher, prepared_sface_path
from faceguard.training.views import CANVAS_SIZE, VIEWS_VERSION, align_canvas, teacher_view

CANVAS_SHARD = 1000
VIEW_CHUNK = 512
EMBED_BATCH = 16
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

EmbedFn = Callable[[np.ndarray], np.ndarray]


def default_out() -> Path:
    """``<train cache>/sface_views``."""
    return train_cache_dir() / "sface_views"


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} {message}", flush=True)


# --------------------------------------------------------------------------- stage 1
def build_canvases(dataset: Path, out: Path, limit: int | None = None,
                   threads: int = 1) -> int:
    """Stage 1 (resumable): aligned canvases of every image; returns the face count N."""
    from faceguard.vision.image_io import load_image
    from faceguard.vision.mtcnn import MtcnnDetector

    names = training_image_names(dataset)[:limit]
    if not names:
        raise FaceGuardError(f"no training images in {dataset / 'images'}")
    out.mkdir(parents=True, exist_ok=True)
    names_file = out / "names.txt"
    text = "\n".join(names) + "\n"
    if names_file.is_file() and names_file.read_text() != text:
        raise FaceGuardError(f"{names_file} lists other images: use another --out")
    names_file.write_text(text)
    if (out / "canvases.npy").is_file() and (out / "found.npy").is_file():
        return len(names)
    shards = out / "canvas" / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    detector = MtcnnDetector(min_face=TRAIN_MIN_FACE, threads=threads)
    started, done_now = time.perf_counter(), 0
    count = (len(names) + CANVAS_SHARD - 1) // CANVAS_SHARD
    for shard_index in range(count):
        shard = shards / f"shard_{shard_index:05d}.npz"
        if shard.exists():
            continue
        batch = names[shard_index * CANVAS_SHARD:(shard_index + 1) * CANVAS_SHARD]
        canvases = np.zeros((len(batch), CANVAS_SIZE, CANVAS_SIZE, 3), np.uint8)
        found = np.zeros(len(batch), bool)
        landmarks = np.zeros((len(batch), 5, 2), np.float32)
        for index, name in enumerate(batch):
            try:
                image = load_image(dataset / "images" / name)
            except ImageError:
                continue
            faces = detector.detect(image)
            if faces:
                landmarks[index] = faces[0].landmarks
                canvases[index] = align_canvas(image, faces[0].landmarks)
                found[index] = True
        save_npz_atomically(shard, canvases=canvases, found=found, landmarks=landmarks)
        done_now += len(batch)
        rate = done_now / max(time.perf_counter() - started, 1e-9)
        _log(f"canvases: shard {shard_index + 1}/{count}, {rate:.1f} images/s")
    parts = [np.load(shards / f"shard_{i:05d}.npz") for i in range(count)]
    save_npy_atomically(out / "landmarks.npy", np.concatenate([p["landmarks"] for p in parts]))
    save_npy_atomically(out / "canvases.npy", np.concatenate([p["canvases"] for p in parts]))
    found_all = np.concatenate([p["found"] for p in parts])
    save_npy_atomically(out / "found.npy", found_all)
    _log(f"canvases: {len(names)} images, no face in {int((~found_all).sum())}")
    return len(names)


# --------------------------------------------------------------------------- stage 2
def chunk_path(views_dir: Path, view: int, chunk: int) -> Path:
    """File of the vectors of one view for one chunk of faces."""
    return views_dir / f"view_{view:03d}" / f"chunk_{chunk:05d}.npy"


def check_meta(views_dir: Path, record: dict[str, object]) -> None:
    """Write the job's meta record, or refuse to mix with a cache made differently."""
    path = views_dir / "meta.json"
    if path.is_file():
        old = json.loads(path.read_text())
        for key in ("seed", "views_version", "teacher_sha256", "chunk", "count", "canvas"):
            if old.get(key) != record.get(key):
                raise FaceGuardError(
                    f"{path} was made with {key}={old.get(key)!r}, not {record.get(key)!r}: "
                    "use another --out")
        record = {**old, "views": max(int(str(old.get("views", 0))), int(str(record["views"])))}
    views_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, record)


def compute_chunk(canvases: np.ndarray, found: np.ndarray, view: int, start: int,
                  seed: int, embed: EmbedFn) -> np.ndarray:
    """(n, 128) float16 vectors of one view for faces ``start..start+n`` (zeros: no face)."""
    out = np.zeros((len(found), SFACE_DIM), np.float16)
    rows = [i for i in range(len(found)) if found[i]]
    for first in range(0, len(rows), EMBED_BATCH):
        batch = rows[first:first + EMBED_BATCH]
        crops = np.stack([teacher_view(np.asarray(canvases[i]), start + i, view, seed)
                          for i in batch])
        out[batch] = embed(crops).astype(np.float16)
    return out


def view_order(views: int, first: Sequence[int] = ()) -> list[int]:
    """Views 0..views-1 in the order to compute them: ``first`` (those below ``views``), then
    the rest ascending. The order changes no view (each is drawn from (seed, face, view))."""
    head = [v for v in dict.fromkeys(first) if 0 <= v < views]
    return head + [v for v in range(views) if v not in head]


def run_views(out: Path, views: int, seed: int, embed: EmbedFn, teacher_sha256: str,
              chunk: int = VIEW_CHUNK, max_seconds: float | None = None,
              first: Sequence[int] = ()) -> int:
    """Stage 2 (resumable): every missing (view, chunk) file; returns how many it wrote.

    Views are computed one after the other over all faces, in :func:`view_order` order.
    """
    canvases = np.load(out / "canvases.npy", mmap_mode="r")
    found = np.load(out / "found.npy")
    count = len(found)
    views_dir = out / "views"
    check_meta(views_dir, {"seed": seed, "views_version": VIEWS_VERSION, "views": views,
                           "teacher_sha256": teacher_sha256, "chunk": chunk, "count": count,
                           "canvas": CANVAS_SIZE, "dtype": "float16"})
    chunks = (count + chunk - 1) // chunk
    todo = [(v, c) for v in view_order(views, first) for c in range(chunks)
            if not chunk_path(views_dir, v, c).is_file()]
    total = views * chunks
    _log(f"views: {total - len(todo)}/{total} chunks already done, {len(todo)} to do "
         f"({views} views x {count} faces, chunk {chunk})")
    started, faces_now, written = time.perf_counter(), 0, 0
    for v, c in todo:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        lo, hi = c * chunk, min((c + 1) * chunk, count)
        vectors = compute_chunk(canvases[lo:hi], found[lo:hi], v, lo, seed, embed)
        path = chunk_path(views_dir, v, c)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npy_atomically(path, vectors)
        written += 1
        faces_now += int(found[lo:hi].sum())
        elapsed = time.perf_counter() - started
        rate = faces_now / max(elapsed, 1e-9)
        left = sum(int(found[cc * chunk:(cc + 1) * chunk].sum())
                   for _, cc in todo[todo.index((v, c)) + 1:])
        eta_h = left / max(rate, 1e-9) / 3600
        _log(f"view {v} chunk {c + 1}/{chunks}: {total - len(todo) + written}/{total} "
             f"chunks, {rate:.2f} views/s ({1000 / max(rate, 1e-9):.0f} ms a view), "
             f"ETA {eta_h:.2f} h")
        write_json_atomically(views_dir / "progress.json", {
            "chunks_done": total - len(todo) + written, "chunks_total": total,
            "views_per_second": round(rate, 3), "eta_hours": round(eta_h, 2),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return written


def load_teacher_views(out: Path, views: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 128) float32 vectors and (N, K) bool "done" mask of a (partial) cache.

    A face without an MTCNN face, or a chunk not computed yet, is all zeros and False.
    """
    meta = json.loads((out / "views" / "meta.json").read_text())
    count, chunk = int(meta["count"]), int(meta["chunk"])
    k = int(views if views is not None else meta["views"])
    vectors = np.zeros((count, k, SFACE_DIM), np.float32)
    done = np.zeros((count, k), bool)
    found = np.load(out / "found.npy")
    for v in range(k):
        for c in range((count + chunk - 1) // chunk):
            path = chunk_path(out / "views", v, c)
            if path.is_file():
                lo = c * chunk
                part = np.load(path).astype(np.float32)
                vectors[lo:lo + len(part), v] = part
                done[lo:lo + len(part), v] = found[lo:lo + len(part)]
    return vectors, done


def pin_threads(threads: int) -> None:
    """One thread for BLAS/OpenMP and OpenCV (set before heavy work starts)."""
    import cv2

    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    cv2.setNumThreads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SFace vectors of augmented UTKFace views.")
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/utkface"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--views", type=int, required=True, help="views per face (K)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--chunk", type=int, default=VIEW_CHUNK)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop after this long (finish the current chunk)")
    parser.add_argument("--first", default="",
                        help="views to compute before the others, e.g. 0,2,3 (augmented views "
                             "before the mirror when time is short)")
    parser.add_argument("--model", type=Path, default=None, help="prepared SFace file")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    out: Path = args.out or default_out()
    try:
        model = args.model or prepared_sface_path()
        teacher = SFaceTeacher(model, threads=args.threads)
        _log(f"start pid {os.getpid()}: out {out}, views {args.views}, seed {args.seed}")
        build_canvases(args.dataset, out, args.limit, args.threads)
        written = run_views(out, args.views, args.seed,
                            lambda crops: teacher.embed(crops, EMBED_BATCH),
                            _file_sha256(model), args.chunk, args.max_seconds,
                            [int(v) for v in args.first.split(",") if v.strip()])
    except (FaceGuardError, OSError, ValueError) as error:
        print(f"teacher_views: {error}", file=sys.stderr)
        return 1
    _log(f"done: {written} chunks written this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
