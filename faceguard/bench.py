"""`faceguard bench`: per-stage latency of the pipeline, medians over repeated runs."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import cv2
import numpy as np
import onnxruntime

from faceguard.errors import FaceGuardError
from faceguard.library.matcher import Matcher
from faceguard.native_threads import native_threads
from faceguard.paths import resources_dir
from faceguard.vision.alignment import align_face
from faceguard.vision.embedder import Embedder
from faceguard.vision.image_io import load_image
from faceguard.vision.mtcnn import Face, MtcnnDetector

FRAME_SIZE = (640, 480)
DETECT_MIN_FACES = (20, 40, 60, 80)
TEMPLATES_PER_PERSON = 4


def timed_median_ms(run: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``run`` in milliseconds."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(samples), 3)


def kiosk_frame() -> np.ndarray:
    """A 640x480 frame with the bundled demo portrait in the middle (face about 90 px)."""
    portrait = load_image(resources_dir() / "demo" / "astronaut.png")
    frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 90, np.uint8)
    side = FRAME_SIZE[1]
    scaled = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_AREA)
    left = (FRAME_SIZE[0] - side) // 2
    frame[:, left:left + side] = scaled
    return frame


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_benchmarks(ctx: Any, repeats: int = 30,
                   sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000)
                   ) -> dict[str, Any]:
    """Measure each stage; ``ctx`` is an AppContext (for the configured embedder)."""
    frame = kiosk_frame()
    report: dict[str, Any] = {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(),
                    "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "threads": {"onnxruntime_intra_op": 1, "onnxruntime_inter_op": 1,
                    "blas_openmp": native_threads()},
        "repeats": repeats, "stages": [],
    }
    stages: list[dict[str, Any]] = report["stages"]
    detector = MtcnnDetector(threads=1)
    faces: list[Face] = []
    for min_face in DETECT_MIN_FACES:
        faces = detector.detect(frame, min_face) or faces
        ms = timed_median_ms(partial(detector.detect, frame, min_face), repeats)
        stages.append({"stage": f"detect 640x480, min face {min_face} px", "ms": ms})
    if not faces:
        raise FaceGuardError("the benchmark frame has no detectable face")
    landmarks = faces[0].landmarks
    stages.append({"stage": "align (5-point similarity, 96x96)",
                   "ms": timed_median_ms(lambda: align_face(frame, landmarks), repeats * 10)})
    crop = align_face(frame, landmarks)
    embedder: Embedder | None
    try:
        embedder = ctx.engine.embedder
    except FaceGuardError as error:
        embedder = None
        stages.append({"stage": "embed", "ms": None, "note": str(error)})
    if embedder is not None:
        stages.append({"stage": f"embed 1 face ({embedder.model_id})",
                       "ms": timed_median_ms(lambda: embedder.embed(crop), repeats * 5)})
        mirrored = Embedder(embedder.path, sha256=embedder.sha256, threads=1, mirror=True)
        stages.append({"stage": "embed 1 face + mirror",
                       "ms": timed_median_ms(lambda: mirrored.embed(crop), repeats * 5)})
    rng = np.random.default_rng(0)
    query = rng.standard_normal(128).astype(np.float32)
    query /= np.linalg.norm(query)
    for size in sizes:
        matrix = rng.standard_normal((size, 128), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        people = np.repeat(np.arange(size // TEMPLATES_PER_PERSON + 1), TEMPLATES_PER_PERSON)
        matcher = Matcher()
        matcher.load(people[:size].astype(np.int64), matrix)
        del matrix
        stages.append({"stage": f"match 1:N, {size:,} templates",
                       "ms": timed_median_ms(partial(matcher.search, query),
                                             max(5, repeats // (1 + size // 100_000)))})
        del matcher
    return report


def format_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    machine, threads = report["machine"], report["threads"]
    lines = [f"CPU: {machine['cpu']} ({machine['cores']} cores); onnxruntime "
             f"{machine['onnxruntime']}, numpy {machine['numpy']}",
             f"threads: onnxruntime intra-op {threads['onnxruntime_intra_op']}, inter-op "
             f"{threads['onnxruntime_inter_op']}; BLAS/OpenMP {threads['blas_openmp']}",
             f"median of {report['repeats']}+ runs", "",
             f"{'stage':<58} {'ms':>9}"]
    for stage in report["stages"]:
        value = "n/a" if stage["ms"] is None else f"{stage['ms']:.3f}"
        note = f"  ({stage['note']})" if stage.get("note") else ""
        lines.append(f"{stage['stage']:<58} {value:>9}{note}")
    return "\n".join(lines)
