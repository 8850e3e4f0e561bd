"""`faceguard bench`: per-stage latency of the pipeline, medians over repeated runs, and the
kiosk's figures: frame cost with and without tracking, the same frame through
face_recognition's dlib stack (when installed), tracking accuracy on the demo, idle CPU,
the embedder's share of the CPU's float32 peak, cold start and memory.

Every ratio is measured in one run on one machine (the CPU is named in the report): on
shared machines absolute numbers move from run to run, ratios much less. The sections live in
``bench_search`` (1:N match rows), ``bench_kiosk`` (frame, tracking, idle), ``bench_embedder``
(peak), ``bench_startup`` (cold start, memory) and ``bench_encryption``; timing helpers in
``bench_timing``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import onnxruntime

from faceguard.bench_embedder import embedder_peak_share
from faceguard.bench_encryption import encryption_cost, format_cost
from faceguard.bench_kiosk import idle_cpu, kiosk_frame, kiosk_frame_costs, tracking_on_demo
from faceguard.bench_search import match_stages
from faceguard.bench_startup import MEMORY_TEMPLATES, cold_start, memory_at
from faceguard.bench_timing import timed_median_ms
from faceguard.errors import FaceGuardError
from faceguard.native_threads import native_threads
from faceguard.vision.alignment import align_face
from faceguard.vision.embedder import Embedder
from faceguard.vision.mtcnn import Face, MtcnnDetector

DETECT_MIN_FACES = (20, 40, 60, 80)
SECTIONS = ("stages", "frame", "tracking", "idle", "peak", "cold_start", "memory",
            "encryption")


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
                   sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
                   sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
    """Measure each stage; ``ctx`` is an AppContext (for the configured embedder).
    ``sections`` picks what is measured (:data:`SECTIONS`)."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise FaceGuardError(f"unknown bench section(s) {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(SECTIONS)}")
    report = _stages(ctx, repeats, sizes) if "stages" in sections else _header(repeats)
    extra: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("frame", lambda: kiosk_frame_costs(ctx, repeats)),
        ("tracking", lambda: tracking_on_demo(ctx)),
        ("idle", lambda: idle_cpu(ctx, seconds=max(1.0, min(4.0, repeats / 10)))),
        ("peak", lambda: embedder_peak_share(ctx, repeats)),
        ("cold_start", lambda: cold_start(ctx)),
        ("memory", lambda: memory_at(MEMORY_TEMPLATES)),
        ("encryption", lambda: encryption_cost(MEMORY_TEMPLATES, repeats=max(1, repeats // 10))),
    ]
    for name, measure in extra:
        if name in sections:
            try:
                report[name] = measure()
            except FaceGuardError as error:
                report[name] = {"note": str(error)}
    return report


def _header(repeats: int) -> dict[str, Any]:
    return {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(),
                    "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "threads": {"onnxruntime_intra_op": 1, "onnxruntime_inter_op": 1,
                    "blas_openmp": native_threads()},
        "repeats": repeats, "stages": [],
    }


def _stages(ctx: Any, repeats: int, sizes: Sequence[int]) -> dict[str, Any]:
    """Today's per-stage table: detect, align, embed, match (with a plain float32
    matrix-vector product of the same templates beside each match)."""
    frame = kiosk_frame()
    report = _header(repeats)
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
    stages += match_stages(ctx, repeats, sizes)
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
    for name in SECTIONS[1:]:
        if name in report:
            lines += ["", *_format_section(name, report[name])]
    return "\n".join(lines)


def _format_section(name: str, section: dict[str, Any]) -> list[str]:
    """Plain lines for one of the kiosk sections of the report."""
    if set(section) == {"note"}:
        return [f"{name}: {section['note']}"]
    if name == "encryption":
        return format_cost(section)
    if name == "frame":
        lines = [f"640x480 frame, one face, match against {section['templates']:,} templates"]
        lines += [f"  {row['what']:<56} {row['ms']:>9.3f} ms" for row in section["rows"]]
        dlib = section.get("face_recognition", {})
        if "ratios" in dlib:
            times = ", ".join(f"{k} {v:.1f} ms" for k, v in dlib["frame_ms"].items())
            lines.append(f"  face_recognition's stack: frame {times}; ResNet descriptor "
                         f"{dlib['descriptor_ms']:.1f} ms against our {dlib['embed_ms']:.2f}")
            lines += [f"  faster than face_recognition, {k}: {v}x"
                      for k, v in dlib["ratios"].items()]
        elif dlib:
            lines.append(f"  face_recognition: {dlib['note']}")
        return lines
    if name == "tracking":
        cost = section["frame_ms"]
        return [f"tracking on the demo ({section['frames']} frames at 15/s), against a full "
                f"detection on every frame ({section['faces_compared']} faces)",
                f"  box IoU mean {section['iou_mean']}, 5th percentile {section['iou_p5']}; "
                f"landmark error mean {section['landmark_error_mean']}, 95th percentile "
                f"{section['landmark_error_p95']} of the eye distance; missed "
                f"{section['faces_missed']}, extra {section['faces_extra']}",
                f"  searches with tracking: {section['searches_with_tracking']}; faces "
                f"embedded {section['embedded']}",
                f"  kiosk frame cost: tracking off {cost['tracking off']:.2f} ms, on "
                f"{cost['tracking on']:.2f} ms "
                f"({cost['tracking off'] / max(cost['tracking on'], 1e-9):.1f}x)",
                f"  events: {section['events']}; same decisions: {section['same_decisions']}"]
    if name == "idle":
        return [f"empty scene at {section['fps']:.0f} frames/s for {section['seconds']:.0f} s: "
                + "; ".join(f"{k} {v['cpu_share_of_one_core']:.1%} of one core "
                            f"({v['ms_per_frame']:.2f} ms a frame)"
                            for k, v in section.items() if isinstance(v, dict))]
    if name == "peak":
        line = (f"float32 matrix product, one thread: {section['matmul_gflops']} GFLOP/s; "
                f"embedder {section['embed_ms']:.2f} ms a face")
        if "share_of_peak" in section:
            line += (f", {section['embedder_mflop']} MFLOP = {section['embedder_gflops']} "
                     f"GFLOP/s, {section['share_of_peak']:.0%} of the matrix product")
        return [line]
    if name == "cold_start":
        return [f"cold start (process start to the first recognised frame): "
                f"{section['seconds']:.2f} s (runs {section['runs']}; a bare Python "
                f"{section['bare_python_s']:.2f} s; target {section['target_s']:.0f} s)"]
    if name == "memory":
        return [f"resident memory: {section['start_mb']} MiB at start, {section['models_mb']} "
                f"with the models, {section['templates_mb']} with {section['templates']:,} "
                f"templates (the matcher holds {section['matcher_mb']} MiB)"]
    return [f"{name}: {section}"]
