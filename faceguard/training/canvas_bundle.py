"""The face canvases and the SFace teacher in one folder small enough for a lent GPU machine.

Online distillation draws augmented views of every canvas (:mod:`faceguard.training.views`)
and has the teacher embed them on the GPU, so it needs the canvases and the teacher file,
not precomputed vectors. Everything sent to that machine must fit 64 MiB, the checkout's
tracked files included (about 15 MiB: code, the shipped models, docs); the bundle may take
what is left less 2 MiB (:func:`bundle_limit_bytes`)::

    python -m faceguard.training.canvas_bundle --out .device/online [--quality Q] [--side S]

Layout of ``--out``:

    canvases.npz   ``data`` (every canvas as WebP or JPEG bytes, back to back) and ``offsets``
                   (N + 1), the layout of :mod:`faceguard.training.packing`
    indices.npy    int32 (N,): the row of each canvas in the source ``canvases.npy``
    names.txt.gz   the N image names, one a line
    sface_2021dec_int8bq_prepared.onnx   the prepared teacher, copied
    bundle.json    counts, format, quality, side, VIEWS_VERSION, size and SHA-256 of each file

Only canvases with a face found are kept. ``--side`` below 144 stores them downscaled
(INTER_AREA) and :func:`load_canvas_bundle` scales them back up (INTER_CUBIC).

What lower quality costs, measured with ``--measure 600`` (600 found faces drawn with seed 0;
cosine between the SFace vectors, onnxruntime, of the clean 112 crop cut from the original
canvas and from the decoded one; the projected total holds all 23,625 found faces, the
teacher file and the names and indices; fits: under the 60 MiB this table was first
measured against, before the checkout's own size was counted)::

    format side quality  bytes/face  cos mean  cos p5  total MiB  fits
    webp    144      50        1003  0.9372  0.8945       33.0  yes
    webp    144      70        1223  0.9587  0.9321       37.9  yes
    webp    144      80        1542  0.9752  0.9589       45.1  yes
    webp    144      84        1795  0.9823  0.9700       50.8  yes
    webp    144      86        1958  0.9853  0.9757       54.5  yes
    webp    144      88        2178  0.9885  0.9808       59.5  yes
    webp    144      90        2436  0.9908  0.9850       65.3  no
    webp    144      95        3486  0.9955  0.9921       88.9  no
    jpg     144      50        2275  0.9650  0.9388       61.6  no
    jpg     144      70        2784  0.9799  0.9601       73.1  no
    jpg     144      90        4342  0.9942  0.9887      108.2  no
    webp    128      80        1233  0.9624  0.9369       38.2  yes
    webp    128      88        1720  0.9795  0.9647       49.1  yes
    webp    128      90        1916  0.9827  0.9703       53.6  yes
    webp    128      95        2731  0.9889  0.9796       71.9  no

WebP beats JPEG at equal cost: JPEG 70 takes 2,784 bytes a face for a mean cosine of 0.980,
WebP 84 1,795 bytes for 0.982, and even JPEG 50 does not fit. Downscaling to 128 costs more
than it saves: 128 at quality 90 (1,916 bytes, 0.983) loses to 144 at 86 (1,958, 0.985).
:data:`DEFAULT_QUALITY` is 80: with the checkout (15.3 MiB tracked on 2026-12-02) in the same
64 MiB, the bundle may take about 46 MiB, and WebP 80 (1,542 bytes a face, 45.1 MiB with the
teacher; mean cosine 0.975 to the uncompressed canvas, 5th percentile 0.959) is the best
quality of the table that fits. The teacher labels the decoded pixels the student sees, so
compression shifts the images a little but adds no label noise. A first build at 88 (2,155
bytes a face, 58.94 MiB) fitted the 60 MiB first assumed but not the 64 MiB with the checkout.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.paths import train_cache_dir
from faceguard.training.packing import pack_crops_jpeg
from faceguard.training.sface import (
    PREPARED_NAME,
    SOURCE_SHA256,
    WHEEL_MEMBER,
    prepare_sface_graph,
    prepared_sface_path,
    sface_dir,
)
from faceguard.training.views import CANVAS_SIZE, VIEWS_VERSION, canvas_center_crop
from faceguard.vision.onnx_model import file_sha256

TRANSFER_LIMIT_BYTES = 64 * 2**20
SAFETY_MARGIN_BYTES = 2 * 2**20
FALLBACK_CODE_BYTES = 16 * 2**20  # outside a git checkout: about what the checkout holds
DEFAULT_QUALITY = 80
DEFAULT_FORMAT = "webp"
CANVASES_FILE = "canvases.npz"
INDICES_FILE = "indices.npy"
NAMES_FILE = "names.txt.gz"
MANIFEST_FILE = "bundle.json"
BUNDLE_KIND = "faceguard-canvas-bundle"


class BundleError(FaceGuardError):
    """A canvas bundle cannot be built or read."""


@dataclass
class CanvasBundle:
    """A loaded bundle: decoded canvases and where they came from."""

    canvases: np.ndarray  # uint8 (N, 144, 144, 3) RGB
    indices: np.ndarray  # int32 (N,): rows in the source canvases.npy
    names: list[str]  # N image names
    teacher_path: Path  # the prepared SFace file inside the bundle
    manifest: dict[str, Any]  # bundle.json


def checkout_bytes(root: Path | None = None) -> int:
    """Bytes of the tracked files of the git checkout at ``root`` (they travel too)."""
    import subprocess

    root = root or Path(__file__).resolve().parents[2]
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True,
                                capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return FALLBACK_CODE_BYTES
    files = [root / name for name in listed.decode().split("\0") if name]
    return sum(f.stat().st_size for f in files if f.is_file())


def bundle_limit_bytes(root: Path | None = None) -> int:
    """What the bundle may take: 64 MiB less the checkout's tracked files and 2 MiB."""
    return TRANSFER_LIMIT_BYTES - checkout_bytes(root) - SAFETY_MARGIN_BYTES


def default_source() -> Path:
    """``<train cache>/sface_views``, where :mod:`faceguard.training.teacher_views` writes."""
    return train_cache_dir() / "sface_views"


# --------------------------------------------------------------------------- codec
def encode_canvases(canvases: np.ndarray, quality: int, side: int = CANVAS_SIZE,
                    fmt: str = DEFAULT_FORMAT) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 144, 144, 3) RGB canvases as (data, offsets), downscaled to ``side``."""
    if not 16 <= side <= CANVAS_SIZE:
        raise BundleError(f"--side must be in 16..{CANVAS_SIZE}, got {side}")
    if side != CANVAS_SIZE:
        canvases = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA)
                             for c in canvases])
    return pack_crops_jpeg(np.ascontiguousarray(canvases), quality, ext=f".{fmt}")


def decode_canvases(data: np.ndarray, offsets: np.ndarray, workers: int | None = None,
                    ) -> np.ndarray:
    """Decode (data, offsets) to uint8 (N, 144, 144, 3) RGB in a thread pool, scaling
    smaller stored canvases back up (cv2 releases the GIL, so threads run in parallel)."""
    count = len(offsets) - 1
    if count < 0 or offsets[0] != 0 or offsets[-1] != data.size or np.any(np.diff(offsets) <= 0):
        raise BundleError(f"{CANVASES_FILE}: offsets do not cut data into non-empty pieces")
    out = np.empty((count, CANVAS_SIZE, CANVAS_SIZE, 3), np.uint8)

    def decode_range(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            image = cv2.imdecode(data[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
            if image is None or image.shape[0] != image.shape[1]:
                raise BundleError(f"{CANVASES_FILE}: canvas {i} does not decode")
            if image.shape[0] != CANVAS_SIZE:
                image = cv2.resize(image, (CANVAS_SIZE, CANVAS_SIZE),
                                   interpolation=cv2.INTER_CUBIC)
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out[i])

    workers = max(1, workers or os.cpu_count() or 1)
    bounds = np.linspace(0, count, min(count, workers * 8) + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for job in [pool.submit(decode_range, int(lo), int(hi))
                    for lo, hi in itertools.pairwise(bounds)]:
            job.result()
    return out


# --------------------------------------------------------------------------- teacher
def expected_teacher_sha256() -> str | None:
    """SHA-256 the prepared teacher must have: sface.py records only the source file's
    (SOURCE_SHA256), so the source is checked and prepared again; None without the source."""
    source = sface_dir() / Path(WHEEL_MEMBER).name
    if not source.is_file():
        return None
    if file_sha256(source) != SOURCE_SHA256:
        raise BundleError(f"{source} is not the published SFace file (SHA-256 differs from "
                          f"{SOURCE_SHA256}): run `python tools/fetch_sface.py`")
    return hashlib.sha256(prepare_sface_graph(source.read_bytes())).hexdigest()


# --------------------------------------------------------------------------- build
def build_canvas_bundle(source: Path, out: Path, teacher: Path, *, quality: int = DEFAULT_QUALITY,
                        side: int = CANVAS_SIZE, fmt: str = DEFAULT_FORMAT,
                        teacher_sha256: str | None = None,
                        limit_bytes: int | None = TRANSFER_LIMIT_BYTES) -> dict[str, Any]:
    """Write the bundle of the found canvases in ``source`` to ``out``; return bundle.json.

    Raises :class:`BundleError` (and removes what it wrote) when the total exceeds
    ``limit_bytes`` (None: no limit; the command line passes :func:`bundle_limit_bytes`) or
    the teacher's SHA-256 is not ``teacher_sha256``.
    """
    for name in ("canvases.npy", "found.npy", "names.txt"):
        if not (source / name).is_file():
            raise BundleError(f"{source / name} is missing: build the canvases first "
                              "(python -m faceguard.training.teacher_views)")
    if not teacher.is_file():
        raise BundleError(f"teacher {teacher} not found: run `python tools/fetch_sface.py`")
    actual_sha = file_sha256(teacher)
    if teacher_sha256 is not None and actual_sha != teacher_sha256:
        raise BundleError(f"{teacher} has SHA-256 {actual_sha}, expected {teacher_sha256}: "
                          "prepare it again with `python tools/fetch_sface.py`")
    canvases = np.load(source / "canvases.npy", mmap_mode="r")
    found = np.load(source / "found.npy")
    all_names = (source / "names.txt").read_text().splitlines()
    if not len(canvases) == len(found) == len(all_names):
        raise BundleError(f"{source}: canvases, found.npy and names.txt disagree in length")
    indices = np.flatnonzero(found).astype(np.int32)
    if not len(indices):
        raise BundleError(f"{source}: no canvas has a face")
    data, offsets = encode_canvases(np.asarray(canvases[indices]), quality, side, fmt)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / CANVASES_FILE, data=data, offsets=offsets)
    np.save(out / INDICES_FILE, indices)
    text = "".join(all_names[i] + "\n" for i in indices)
    (out / NAMES_FILE).write_bytes(gzip.compress(text.encode(), mtime=0))
    shutil.copyfile(teacher, out / PREPARED_NAME)
    written = [CANVASES_FILE, INDICES_FILE, NAMES_FILE, PREPARED_NAME]
    files: dict[str, dict[str, Any]] = {
        name: {"bytes": (out / name).stat().st_size, "sha256": file_sha256(out / name)}
        for name in written}
    manifest: dict[str, Any] = {
        "kind": BUNDLE_KIND, "views_version": VIEWS_VERSION, "faces": len(indices),
        "source_faces": len(found), "format": fmt, "quality": quality, "side": side,
        "canvas_size": CANVAS_SIZE, "teacher": PREPARED_NAME,
        "teacher_checked": teacher_sha256 is not None,
        "bytes_per_face": round(files[CANVASES_FILE]["bytes"] / len(indices), 1),
        "files": files, "limit_bytes": limit_bytes}
    files_bytes = sum(f["bytes"] for f in files.values())
    total = files_bytes
    while manifest.get("total_bytes") != total:  # bundle.json counts itself: settles at once
        manifest["total_bytes"], manifest["total_mib"] = total, round(total / 2**20, 2)
        total = files_bytes + len(json.dumps(manifest, indent=1)) + 1
    if limit_bytes is not None and total > limit_bytes:
        for name in written:
            (out / name).unlink()
        raise BundleError(f"the bundle would be {total / 2**20:.2f} MiB, over the "
                          f"{limit_bytes / 2**20:.1f} MiB limit (64 MiB less the checkout and "
                          "2 MiB): "
                          "lower --quality or --side, or pass --allow-large; nothing was kept")
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# --------------------------------------------------------------------------- load
def read_manifest(bundle: Path) -> dict[str, Any]:
    """bundle.json of ``bundle``, checked to be one."""
    path = bundle / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{path} is missing: {bundle} is not a canvas bundle (build one "
                          "with `python -m faceguard.training.canvas_bundle --out DIR`)")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise BundleError(f"{path} is damaged: {error}") from error
    if manifest.get("kind") != BUNDLE_KIND:
        raise BundleError(f"{path} does not describe a canvas bundle")
    return manifest


def check_bundle_files(bundle: Path, manifest: dict[str, Any]) -> None:
    """Every file bundle.json lists is there with its recorded size and SHA-256."""
    for name, record in manifest["files"].items():
        path = bundle / name
        if not path.is_file():
            raise BundleError(f"{path} is missing from the bundle ({record['bytes']:,} bytes "
                              "expected): copy the bundle again")
        size = path.stat().st_size
        if size != record["bytes"] or file_sha256(path) != record["sha256"]:
            raise BundleError(f"{path} is damaged ({size:,} bytes, SHA-256 differs from "
                              f"bundle.json, {record['bytes']:,} bytes): copy the bundle again")


def load_canvas_bundle(bundle: Path, workers: int | None = None) -> CanvasBundle:
    """Check every file of ``bundle`` against bundle.json and decode the canvases."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_bundle_files(bundle, manifest)
    with np.load(bundle / CANVASES_FILE) as packed:
        canvases = decode_canvases(np.ascontiguousarray(packed["data"], np.uint8),
                                   np.asarray(packed["offsets"], np.int64), workers)
    indices = np.load(bundle / INDICES_FILE)
    names = gzip.decompress((bundle / NAMES_FILE).read_bytes()).decode().splitlines()
    if not len(canvases) == len(indices) == len(names) == manifest["faces"]:
        raise BundleError(f"{bundle}: canvases, indices and names disagree with bundle.json")
    return CanvasBundle(canvases, indices, names, bundle / manifest["teacher"], manifest)


# --------------------------------------------------------------------------- measure
MEASURE_GRID = ([("webp", CANVAS_SIZE, q) for q in (50, 70, 80, 84, 86, 88, 90, 95)]
                + [("jpg", CANVAS_SIZE, q) for q in (50, 70, 90)]
                + [("webp", 128, q) for q in (80, 88, 90, 95)])


def measure_quality(source: Path, teacher: Path, faces: int, seed: int = 0,
                    threads: int = 1) -> list[dict[str, Any]]:
    """For each (format, side, quality) of :data:`MEASURE_GRID`: bytes a face, mean and
    5th-percentile cosine of SFace vectors (clean crop, original vs decoded canvas), the
    projected bundle total for every found face and whether that fits one part."""
    from faceguard.training.sface import SFaceTeacher

    found = np.load(source / "found.npy")
    usable = np.flatnonzero(found)
    rows_drawn = np.sort(np.random.default_rng(seed).choice(usable, faces, replace=False))
    canvases = np.asarray(np.load(source / "canvases.npy", mmap_mode="r")[rows_drawn])
    embedder = SFaceTeacher(teacher, threads=threads)
    reference = embedder.embed(np.stack([canvas_center_crop(c) for c in canvases]))
    names = (source / "names.txt").read_text().splitlines()
    fixed = (teacher.stat().st_size + 4 * len(usable) + 4096
             + len(gzip.compress("".join(names[i] + "\n" for i in usable).encode())))
    limit = bundle_limit_bytes()
    results = []
    for fmt, side, quality in MEASURE_GRID:
        data, offsets = encode_canvases(canvases, quality, side, fmt)
        decoded = decode_canvases(data, offsets, threads)
        vectors = embedder.embed(np.stack([canvas_center_crop(c) for c in decoded]))
        cosine = np.sum(vectors * reference, axis=1)
        per_face = data.size / faces
        total = per_face * len(usable) + fixed
        results.append({"format": fmt, "side": side, "quality": quality,
                        "bytes_per_face": round(per_face), "cos_mean": float(cosine.mean()),
                        "cos_p5": float(np.percentile(cosine, 5)),
                        "total_mib": total / 2**20, "fits": total <= limit})
    return results


def format_table(results: list[dict[str, Any]]) -> str:
    """The measurement as the plain table of the module docstring."""
    lines = ["format side quality  bytes/face  cos mean  cos p5  total MiB  fits"]
    for r in results:
        lines.append(f"{r['format']:<6} {r['side']:>4} {r['quality']:>7} {r['bytes_per_face']:>11}"
                     f"  {r['cos_mean']:.4f}  {r['cos_p5']:.4f}  {r['total_mib']:>9.1f}  "
                     f"{'yes' if r['fits'] else 'no'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="bundle folder to write")
    parser.add_argument("--source", type=Path, default=None,
                        help="canvases folder (default <train cache>/sface_views)")
    parser.add_argument("--teacher", type=Path, default=None, help="prepared SFace file")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY)
    parser.add_argument("--side", type=int, default=CANVAS_SIZE,
                        help="store canvases at this side (upscaled back at load)")
    parser.add_argument("--format", choices=("webp", "jpg"), default=DEFAULT_FORMAT)
    parser.add_argument("--allow-large", action="store_true",
                        help="write the bundle even if over the limit (64 MiB less the checkout)")
    parser.add_argument("--measure", type=int, metavar="FACES", default=None,
                        help="print what each quality costs on FACES faces; write nothing")
    args = parser.parse_args(argv)
    source: Path = args.source or default_source()
    teacher: Path = args.teacher or prepared_sface_path()
    try:
        if args.measure:
            print(format_table(measure_quality(source, teacher, args.measure)))
            return 0
        if args.out is None:
            parser.error("--out is required (or --measure FACES)")
        expected = expected_teacher_sha256()
        if expected is None:
            print("canvas_bundle: SFace source file absent, teacher SHA-256 not checked",
                  file=sys.stderr)
        started = time.perf_counter()
        manifest = build_canvas_bundle(
            source, args.out, teacher, quality=args.quality, side=args.side, fmt=args.format,
            teacher_sha256=expected,
            limit_bytes=None if args.allow_large else bundle_limit_bytes())
    except BundleError as error:
        print(f"canvas_bundle: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {manifest['faces']} faces, {manifest['format']} quality "
          f"{manifest['quality']} side {manifest['side']}, {manifest['bytes_per_face']} bytes "
          f"a face; total {manifest['total_bytes']:,} bytes ({manifest['total_mib']} MiB) "
          f"in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
