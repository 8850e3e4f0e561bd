"""Distillation teacher: dlib's ResNet face descriptor, and a resumable cache of its vectors.

The teacher is dlib's HOG frontal face detector, its 5-point shape predictor and its ResNet
descriptor (``dlib_face_recognition_resnet_model_v1.dat``), with the model files taken from
the ``face_recognition_models`` package. The 68-point predictor is never used (its licence
does not allow products).

Build the UTKFace cache (resumable; finished shards are skipped on restart)::

    python -m faceguard.training.teacher utkface --dataset ../shared/datasets/utkface \
        --out DIR --workers 2

Outputs in DIR: ``names.txt``, ``fallback_box.json``, ``shards/shard_NNNNN.npz`` and, once
every shard is done, ``utk_teacher.npy`` (N, 128 float32, raw dlib vectors),
``utk_teacher_mirrored.npy``, ``utk_from_hog.npy``, ``utk_ok.npy``, ``utk_boxes.npy`` and
``meta.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.paths import train_cache_dir

Box = tuple[int, int, int, int]
"""A face box (left, top, right, bottom) in dlib's convention (right/bottom inclusive)."""

DESCRIPTOR_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
HOG_UPSAMPLE = 1
SHARD_SIZE = 500
FALLBACK_SAMPLE = 500
TASK_SIZE = 20
PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def dlib_models_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package.

    The package is located without importing it (its ``__init__`` needs pkg_resources).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The face_recognition_models package is not installed (pip install "
            "face_recognition_models)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to unit length, as float32."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return vector.copy()
    return (vector / norm).astype(np.float32)


@dataclass(frozen=True)
class TeacherResult:
    """dlib's descriptors for one face: raw vectors as dlib returns them."""

    vector: np.ndarray
    """float32 (128,), descriptor of the aligned 150x150 chip."""
    vector_mirrored: np.ndarray
    """float32 (128,), descriptor of the horizontally mirrored chip."""
    box: Box
    """The face box used for the landmarks (left, top, right, bottom)."""
    from_hog: bool
    """True when HOG found the face, False when the fallback box was used."""


class DlibTeacher:
    """dlib HOG detector + 5-point landmarks + ResNet descriptor (original and mirrored)."""

    def __init__(self, models_dir: Path | None = None) -> None:
        """Load the three dlib models (dlib is imported here, not at module import)."""
        import dlib

        folder = models_dir if models_dir is not None else dlib_models_dir()
        predictor_path = folder / PREDICTOR_FILE
        descriptor_path = folder / DESCRIPTOR_FILE
        for path in (predictor_path, descriptor_path):
            if not path.is_file():
                raise FileNotFoundError(f"dlib model file not found: {path}")
        self._dlib: Any = dlib
        self._detector: Any = dlib.get_frontal_face_detector()
        self._predictor: Any = dlib.shape_predictor(str(predictor_path))
        self._encoder: Any = dlib.face_recognition_model_v1(str(descriptor_path))

    @staticmethod
    def _check_image(image_rgb: np.ndarray) -> np.ndarray:
        """A C-contiguous uint8 (H, W, 3) array, or ValueError."""
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(
                f"expected a uint8 RGB image of shape (H, W, 3), got {image_rgb.dtype} "
                f"{image_rgb.shape}"
            )
        return np.ascontiguousarray(image_rgb)

    def detect(self, image_rgb: np.ndarray) -> Box | None:
        """The largest HOG face box (upsample 1), or None when HOG finds no face."""
        image = self._check_image(image_rgb)
        rects = self._detector(image, HOG_UPSAMPLE)
        if len(rects) == 0:
            return None
        best = max(rects, key=lambda r: r.width() * r.height())
        return (int(best.left()), int(best.top()), int(best.right()), int(best.bottom()))

    def describe(
        self, image_rgb: np.ndarray, fallback_box: Box | None = None
    ) -> TeacherResult | None:
        """Descriptors of the largest face; ``fallback_box`` is used when HOG finds none.

        Returns None when HOG finds no face and no fallback box is given.
        """
        image = self._check_image(image_rgb)
        box = self.detect(image)
        from_hog = box is not None
        if box is None:
            if fallback_box is None:
                return None
            box = (
                int(fallback_box[0]),
                int(fallback_box[1]),
                int(fallback_box[2]),
                int(fallback_box[3]),
            )
        rect = self._dlib.rectangle(box[0], box[1], box[2], box[3])
        shape = self._predictor(image, rect)
        chip = self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        mirrored = np.ascontiguousarray(chip[:, ::-1])
        vectors = self._encoder.compute_face_descriptor([chip, mirrored])
        return TeacherResult(
            vector=np.asarray(vectors[0], dtype=np.float32),
            vector_mirrored=np.asarray(vectors[1], dtype=np.float32),
            box=box,
            from_hog=from_hog,
        )

    def embed_largest(
        self, image_rgb: np.ndarray, mirror: bool = False, fallback_box: Box | None = None
    ) -> np.ndarray | None:
        """L2-normalised float32 (128,) vector of the largest face, or None if no face.

        With ``mirror=True`` the unit vectors of the chip and of its mirror are added and the
        sum renormalised.
        """
        result = self.describe(image_rgb, fallback_box=fallback_box)
        if result is None:
            return None
        if not mirror:
            return l2_normalise(result.vector)
        return l2_normalise(l2_normalise(result.vector) + l2_normalise(result.vector_mirrored))


# --------------------------------------------------------------------------- cache builder


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


def absolute_box(relative: Sequence[float], width: int, height: int) -> Box:
    """A relative (left, top, right, bottom) box in pixels for an image of this size."""
    return (
        round(relative[0] * width),
        round(relative[1] * height),
        round(relative[2] * width),
        round(relative[3] * height),
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


def shard_path(out_dir: Path, shard: int) -> Path:
    """Path of one finished shard."""
    return out_dir / "shards" / f"shard_{shard:05d}.npz"


def _atomic_write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary name and os.replace."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save one .npy through a temporary name and os.replace."""
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _shard_done(out_dir: Path, shard: int, names: Sequence[str]) -> bool:
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


def _save_shard(out_dir: Path, shard: int, names: Sequence[str], parts: list[TaskResult]) -> None:
    """Assemble a shard from its task results and save it atomically."""
    parts = sorted(parts, key=lambda p: p.offset)
    path = shard_path(out_dir, shard)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        names=np.array(names),
        vectors=np.concatenate([p.vectors for p in parts]),
        mirrored=np.concatenate([p.mirrored for p in parts]),
        boxes=np.concatenate([p.boxes for p in parts]),
        from_hog=np.concatenate([p.from_hog for p in parts]),
        ok=np.concatenate([p.ok for p in parts]),
        seconds=np.float64(sum(p.seconds for p in parts)),
    )
    os.replace(tmp, path)


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(offset, slice) pairs of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _write_names(out_dir: Path, names: list[str]) -> None:
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
    _atomic_write_text(path, text)


def median_box(
    boxes: Sequence[Sequence[float]],
) -> tuple[float, float, float, float]:
    """The box with the median centre and median width and height of these boxes.

    Unlike a per-coordinate median this keeps HOG's square shape when box sizes vary.
    """
    array = np.asarray(boxes, dtype=np.float64)
    centre_x = float(np.median((array[:, 0] + array[:, 2]) / 2))
    centre_y = float(np.median((array[:, 1] + array[:, 3]) / 2))
    half_w = float(np.median(array[:, 2] - array[:, 0])) / 2
    half_h = float(np.median(array[:, 3] - array[:, 1])) / 2
    return (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)


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
    _atomic_write_text(path, json.dumps(info, indent=2) + "\n")
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
    _write_names(out_dir, names)

    shards = [list(chunk) for _, chunk in _chunks(names, SHARD_SIZE)]
    pending = [
        s for s, shard_names in enumerate(shards) if not _shard_done(out_dir, s, shard_names)
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
                    _save_shard(out_dir, part.shard, shards[part.shard], collected.pop(part.shard))
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
    return _assemble(
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


def _read_runs(out_dir: Path) -> list[dict[str, Any]]:
    """The finished describe loops recorded in runs.jsonl (images, wall seconds, workers)."""
    path = out_dir / "runs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _assemble(
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
    _atomic_save_npy(out_dir / "utk_teacher.npy", vectors)
    _atomic_save_npy(out_dir / "utk_teacher_mirrored.npy", mirrored)
    _atomic_save_npy(out_dir / "utk_from_hog.npy", from_hog)
    _atomic_save_npy(out_dir / "utk_ok.npy", ok)
    _atomic_save_npy(out_dir / "utk_boxes.npy", boxes)
    misses = int(np.sum(ok & ~from_hog))
    count = len(names)
    runs = _read_runs(out_dir)
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
    _atomic_write_text(out_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


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
