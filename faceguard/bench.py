"""`faceguard bench`: per-stage latency of the pipeline, medians over repeated runs, and the
kiosk's figures: frame cost with and without tracking, the same frame through
face_recognition's dlib stack (when installed), tracking accuracy on the demo, idle CPU,
the embedder's share of the CPU's float32 peak, cold start and memory.

Every ratio is measured in one run on one machine (the CPU is named in the report): on
shared machines absolute numbers move from run to run, ratios much less.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime

from faceguard.bench_encryption import encryption_cost, format_cost
from faceguard.clock import ManualClock
from faceguard.errors import FaceGuardError
from faceguard.kiosk.decisions import Decider, DecisionPolicy
from faceguard.kiosk.demo import DEMO_PERSON
from faceguard.kiosk.pipeline import PROCESS_MAX_SIDE, FrameResult, KioskPipeline
from faceguard.kiosk.sources import DEMO_KNOWN_PHOTO, DemoSource
from faceguard.kiosk.tracking import TrackingPolicy
from faceguard.library.database import FaceLibrary
from faceguard.library.half_scores import score_kernel
from faceguard.library.matcher import Matcher
from faceguard.library.template_index import DEFAULT_FUSION, Fusion
from faceguard.native_threads import native_threads
from faceguard.paths import resources_dir
from faceguard.settings import save_settings
from faceguard.vision.alignment import align_face
from faceguard.vision.embedder import Embedder
from faceguard.vision.engine import FaceEngine
from faceguard.vision.image_io import encode_jpeg, load_image
from faceguard.vision.mtcnn import Face, MtcnnDetector, box_iou

FRAME_SIZE = (640, 480)
DETECT_MIN_FACES = (20, 40, 60, 80)
TEMPLATES_PER_PERSON = 4
KIOSK_MIN_FACE = 60
FRAME_TEMPLATES = 10_000  # the library the whole-frame path matches against
MEMORY_TEMPLATES = 100_000
IDLE_FPS = 15.0
SECTIONS = ("stages", "frame", "tracking", "idle", "peak", "cold_start", "memory",
            "encryption")


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


def paired_median_ms(first: Callable[[], object], second: Callable[[], object],
                     repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Medians of two jobs timed in alternation (so a busy neighbour slows both alike)."""
    for _ in range(warmup):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for job, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            job()
            into.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(samples[0]), 3), round(statistics.median(samples[1]), 3)


def paired_best_ms(first: Callable[[], object], second: Callable[[], object],
                   repeats: int) -> tuple[float, float]:
    """Fastest run of each of two jobs timed in alternation, in milliseconds."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats + 2):
        for slot, job in enumerate((first, second)):
            start = time.perf_counter()
            job()
            best[slot] = min(best[slot], (time.perf_counter() - start) * 1000.0)
    return round(best[0], 4), round(best[1], 4)


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
    rng = np.random.default_rng(0)
    query = rng.standard_normal(128).astype(np.float32)
    query /= np.linalg.norm(query)
    rule: Fusion = getattr(ctx, "fusion", DEFAULT_FUSION)  # the shipped model's rule
    for size in sizes:
        matrix = rng.standard_normal((size, 128), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        people = np.repeat(np.arange(size // TEMPLATES_PER_PERSON + 1), TEMPLATES_PER_PERSON)
        matcher = Matcher(fusion=rule)
        matcher.load(people[:size].astype(np.int64), matrix)
        runs = max(5, repeats // (1 + size // 100_000))
        search_ms, plain_ms = paired_median_ms(partial(matcher.search, query),
                                               partial(np.dot, matrix, query), runs)
        best_search, best_plain = paired_best_ms(partial(matcher.search, query),
                                                 partial(np.dot, matrix, query), runs)
        stages.append({"stage": f"match 1:N, {size:,} templates", "ms": search_ms,
                       "fusion": rule, "vs_matvec": round(search_ms / plain_ms, 3),
                       "vs_matvec_best": round(best_search / best_plain, 3),
                       "note": f"{search_ms / plain_ms:.2f}x a float32 matrix-vector "
                               f"product of the same templates ({plain_ms:.2f} ms); fastest "
                               f"runs {best_search / best_plain:.2f}x; rule {rule}"})
        del matrix, matcher
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


# -- the kiosk's frame: whole path, tracking, face_recognition's stack -------------------------

def _demo_person(engine: FaceEngine) -> tuple[np.ndarray, np.ndarray]:
    """The enrolled demo person's embedding and aligned crop (from the shipped photo)."""
    photo = load_image(resources_dir() / "demo" / DEMO_KNOWN_PHOTO)
    observation = engine.embed_largest(photo)
    if observation is None or observation.embedding is None:
        raise FaceGuardError("the demo photo has no detectable face")
    return observation.embedding, observation.crop


def bench_pipeline(ctx: Any, *, tracking: bool, templates: int = FRAME_TEMPLATES,
                   motion_threshold: float | None = None,
                   clock: ManualClock | None = None) -> KioskPipeline:
    """A kiosk pipeline on an in-memory library: the demo person enrolled among
    ``templates`` random templates (people who never match), liveness off."""
    engine: FaceEngine = ctx.engine
    point = ctx.operating_point
    library = FaceLibrary.in_memory()
    person = library.add_person(DEMO_PERSON, actor="bench")
    vector, crop = _demo_person(engine)
    library.add_template(person.id, vector, engine.model_id, 1.0, encode_jpeg(crop),
                         actor="bench")
    rng = np.random.default_rng(1)
    others = rng.standard_normal((templates - 1, vector.size), dtype=np.float32)
    ids = np.concatenate([[person.id], 1_000_000 + np.arange(templates - 1)]).astype(np.int64)
    matcher = Matcher(point.threshold, point.margin)
    matcher.load(ids, np.concatenate([vector[None], others]))
    settings = ctx.settings
    policy = DecisionPolicy.from_settings(settings)
    policy = replace(policy, liveness=replace(policy.liveness, mode="off"))
    clock = clock or ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    decider = Decider(policy, "bench")
    threshold = settings.motion_threshold if motion_threshold is None else motion_threshold
    follow = TrackingPolicy(tracking, settings.detect_interval, threshold,
                            settings.recheck_s, policy.votes_required, policy.votes_window)
    return KioskPipeline(engine, matcher, library, decider, min_face=KIOSK_MIN_FACE,
                         clock=clock, tracking=follow)


def _face_recognition_stack() -> tuple[Any, Any, Any] | str:
    """dlib's HOG detector, 5-point predictor and ResNet descriptor (face_recognition's
    models), or why they are not available."""
    try:
        import dlib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "dlib is not installed (pip install '.[train]')"
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return "face_recognition_models is not installed (pip install '.[train]')"
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    predictor = models / "shape_predictor_5_face_landmarks.dat"
    descriptor = models / "dlib_face_recognition_resnet_model_v1.dat"
    if not (predictor.is_file() and descriptor.is_file()):
        return f"face_recognition_models has no dlib model files in {models}"
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor)),
            dlib.face_recognition_model_v1(str(descriptor)))


def kiosk_frame_costs(ctx: Any, repeats: int) -> dict[str, Any]:
    """One 640x480 frame with one face, whole path (find the face, align, embed when
    needed, match against 10k templates): without tracking, with tracking (a visit's steady
    state), and through face_recognition's dlib stack when it is installed."""
    frame = kiosk_frame()
    engine: FaceEngine = ctx.engine
    pipeline = bench_pipeline(ctx, tracking=False)
    matcher = pipeline.matcher

    def whole_frame() -> object:
        faces = engine.detect(frame, KIOSK_MIN_FACE, max_side=PROCESS_MAX_SIDE)
        observations = engine.observe(frame, faces[:1])
        vector = observations[0].embedding if observations else None
        return matcher.search(vector) if vector is not None else None

    faces = engine.detect(frame, KIOSK_MIN_FACE)
    if not faces:
        raise FaceGuardError("the benchmark frame has no detectable face")
    face = faces[0]
    result: dict[str, Any] = {"templates": FRAME_TEMPLATES, "rows": []}
    rows: list[dict[str, Any]] = result["rows"]
    full_ms = timed_median_ms(whole_frame, repeats)
    follow_ms = timed_median_ms(lambda: engine.follow(frame, [face]), repeats)
    rows.append({"what": "full detection + align + embed + match 10k", "ms": full_ms})
    rows.append({"what": "tracked face (O-Net on its last box; R-Net seeds if lost)",
                 "ms": follow_ms})
    # A visit's steady state: the same frame for 8 s at 15 frames/s through the kiosk.
    steady = {}
    for tracking in (False, True):
        clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        kiosk = bench_pipeline(ctx, tracking=tracking, clock=clock)
        for _ in range(30):  # decided, settled
            kiosk.process(frame, clock.advance(1 / IDLE_FPS))
        frames = max(60, repeats * 4)
        start = time.perf_counter()
        for _ in range(frames):
            kiosk.process(frame, clock.advance(1 / IDLE_FPS))
        steady[tracking] = round((time.perf_counter() - start) * 1000.0 / frames, 3)
    rows.append({"what": "kiosk, a decided visit, tracking off (mean per frame)",
                 "ms": steady[False]})
    rows.append({"what": "kiosk, a decided visit, tracking on (mean per frame)",
                 "ms": steady[True]})
    stack = _face_recognition_stack()
    if isinstance(stack, str):
        result["face_recognition"] = {"note": stack}
        return result
    detector, predictor, encoder = stack
    known = np.random.default_rng(2).standard_normal((FRAME_TEMPLATES, 128)).astype(np.float64)
    # Each dlib figure is timed in alternation with ours, so a busy neighbour slows both.
    runs = max(3, repeats // 5)
    times: dict[str, float] = {}
    ours_by_upsample: dict[str, float] = {}
    for upsample in (1, 0):
        def dlib_frame(upsample: int = upsample) -> object:
            found = detector(frame, upsample)
            if not found:
                return None
            shape = predictor(frame, found[0])
            vector = np.array(encoder.compute_face_descriptor(frame, shape, 1))
            return np.linalg.norm(known - vector, axis=1).argmin()  # face_distance over 10k
        key = f"upsample {upsample}"
        if dlib_frame() is None:
            raise FaceGuardError(f"dlib's HOG ({key}) finds no face in the benchmark frame")
        times[key], ours_by_upsample[key] = paired_median_ms(dlib_frame, whole_frame, runs, 1)
    rect = detector(frame, 1)[0]
    shape = predictor(frame, rect)
    crop = align_face(frame, face.landmarks)
    dlib_embed, ours = paired_median_ms(
        lambda: encoder.compute_face_descriptor(frame, shape, 1),
        lambda: engine.embedder.embed(crop), max(5, repeats // 2))
    reference = times["upsample 1"]
    result["face_recognition"] = {
        "frame_ms": times, "our_frame_ms": ours_by_upsample, "descriptor_ms": dlib_embed,
        "embed_ms": ours,
        "note": "face_recognition's defaults: HOG with 1 upsampling, 5-point model, "
                "1 jitter; one thread; each timed in alternation with ours",
        "ratios": {
            "frame, no tracking": round(reference / ours_by_upsample["upsample 1"], 1),
            "frame, tracking (decided visit)": round(reference / steady[True], 1),
            "frame, no tracking, HOG without upsampling":
                round(times["upsample 0"] / ours_by_upsample["upsample 0"], 1),
            "embedder vs ResNet descriptor": round(dlib_embed / ours, 1),
        }}
    return result


def _demo_frames(fps: float = IDLE_FPS) -> list[np.ndarray]:
    source = DemoSource(loop=False, fps=fps)
    source.open()
    return [source.render(index) for index in range(source.cycle_frames)]


def tracking_on_demo(ctx: Any) -> dict[str, Any]:
    """Tracking against a full detection on every frame of the demo (15 frames/s): box
    overlap (IoU) and landmark error (share of the eye distance) of the counted face, faces
    missed, and the kiosk's mean frame cost and decisions with tracking off and on."""
    frames = _demo_frames()
    engine: FaceEngine = ctx.engine
    runs: dict[bool, list[FrameResult]] = {}
    cost: dict[bool, float] = {}
    for tracking in (False, True):
        clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        kiosk = bench_pipeline(ctx, tracking=tracking, clock=clock)
        results = []
        start = time.perf_counter()
        for frame in frames:
            results.append(kiosk.process(frame, clock.advance(1 / IDLE_FPS)))
        cost[tracking] = round((time.perf_counter() - start) * 1000.0 / len(frames), 3)
        runs[tracking] = results
    ious, errors, missed, extra = [], [], 0, 0
    for frame, result in zip(frames, runs[True], strict=True):
        full = engine.detect(frame, KIOSK_MIN_FACE, max_side=PROCESS_MAX_SIDE)
        if not full or not result.faces:
            missed += bool(full) and not result.faces
            extra += bool(result.faces) and not full
            continue
        ref, got = full[0], result.faces[0]
        ious.append(box_iou(np.asarray(got.box), ref.box))
        eyes = float(np.linalg.norm(ref.landmarks[0] - ref.landmarks[1]))
        marks = np.asarray(got.landmarks, dtype=np.float32)
        errors.append(float(np.linalg.norm(marks - ref.landmarks, axis=1).mean()) / eyes)

    def events(results: list[FrameResult]) -> list[str]:
        return [f"{r.index}:{r.event.decision}:{r.event.person_name or '-'}"
                for r in results if r.event is not None]

    searches = {name: sum(r.search == name for r in runs[True])
                for name in ("full", "followed", "idle")}
    return {
        "frames": len(frames), "faces_compared": len(ious),
        "iou_mean": round(float(np.mean(ious)), 4) if ious else None,
        "iou_p5": round(float(np.percentile(ious, 5)), 4) if ious else None,
        "landmark_error_mean": round(float(np.mean(errors)), 4) if errors else None,
        "landmark_error_p95": round(float(np.percentile(errors, 95)), 4) if errors else None,
        "faces_missed": missed, "faces_extra": extra,
        "searches_with_tracking": searches,
        "frame_ms": {"tracking off": cost[False], "tracking on": cost[True]},
        "embedded": {"tracking off": sum(r.embedded for r in runs[False]),
                     "tracking on": sum(r.embedded for r in runs[True])},
        "events": {"tracking off": events(runs[False]), "tracking on": events(runs[True])},
        "same_decisions": [e.split(":", 1)[1] for e in events(runs[False])]
        == [e.split(":", 1)[1] for e in events(runs[True])],
    }


# -- idle, peak, cold start, memory ------------------------------------------------------------

def idle_cpu(ctx: Any, seconds: float = 4.0) -> dict[str, Any]:
    """CPU use of the kiosk's frame processing on an empty scene (the demo's room with sensor
    noise) paced at 15 frames/s, with the motion gate and without it (share of one core)."""
    source = DemoSource(loop=True, fps=IDLE_FPS)
    source.open()
    empty = [source.render(index) for index in range(4)]  # frames 0-14 show nobody
    result: dict[str, Any] = {"fps": IDLE_FPS, "seconds": seconds}
    settings = ctx.settings
    for label, threshold in (("motion gate", settings.motion_threshold), ("no gate", 0.0)):
        kiosk = bench_pipeline(ctx, tracking=settings.tracking == "on",
                               motion_threshold=threshold)
        frames = int(seconds * IDLE_FPS)
        interval = 1.0 / IDLE_FPS
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        due = wall_start
        for index in range(frames):
            kiosk.process(empty[index % len(empty)])
            due += interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        cpu = time.thread_time() - cpu_start
        wall = time.perf_counter() - wall_start
        result[label] = {"cpu_share_of_one_core": round(cpu / wall, 4),
                         "ms_per_frame": round(cpu * 1000.0 / frames, 3)}
    return result


def _embedder_flops(path: Path) -> int | None:
    """Multiply-adds x 2 of one face through an ONNX network (Conv, Gemm, MatMul), counted
    from its graph with onnx's shape inference; None without the onnx package."""
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        return None
    model = onnx.load(str(path))
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(model.graph.value_info) + list(model.graph.input) + \
            list(model.graph.output):
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            kernel = weights.get(node.input[1]) or tuple(shapes.get(node.input[1], ()))
            out = shapes.get(node.output[0])
            if not kernel or not out:
                continue
            # weight (Cout, Cin/group, kh, kw); output (N, Cout, H, W)
            total += 2 * int(np.prod(out)) * int(np.prod(kernel[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            left = shapes.get(node.input[0]) or list(weights.get(node.input[0], ()))
            out = shapes.get(node.output[0])
            if left and out:
                total += 2 * int(np.prod(out)) * int(left[-1])
    return total


def embedder_peak_share(ctx: Any, repeats: int) -> dict[str, Any]:
    """The embedder's float32 throughput against this CPU's one-thread float32 matrix
    product (512x512 matrices, the faster of NumPy's BLAS and onnxruntime's MLAS; the
    fastest of alternating runs)."""
    embedder: Embedder = ctx.engine.embedder
    size = 512
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size), dtype=np.float32)
    right = rng.standard_normal((size, size), dtype=np.float32)
    crop = np.zeros((96, 96, 3), np.uint8)
    # Fastest of alternating runs: a peak is what the machine can do when nobody interrupts.
    matmul_ms, embed_ms = paired_best_ms(lambda: left @ right, lambda: embedder.embed(crop),
                                         max(20, repeats * 2))
    engines = {"numpy": matmul_ms}
    kernel = score_kernel()  # onnxruntime's own matrix product (MLAS), as the embedder uses
    if kernel is not None:
        half_left = left.astype(np.float16)
        engines["onnxruntime"], _ = paired_best_ms(
            lambda: kernel.run({"templates": half_left, "queries": right}), lambda: None,
            max(20, repeats * 2))
    matmul_ms = min(engines.values())
    peak = 2 * size ** 3 / (matmul_ms / 1000.0)
    flops = _embedder_flops(embedder.path)
    result: dict[str, Any] = {
        "matmul_gflops": round(peak / 1e9, 2), "embed_ms": embed_ms,
        "matmul_gflops_by_engine": {name: round(2 * size ** 3 / (ms / 1000.0) / 1e9, 2)
                                    for name, ms in engines.items()}}
    if flops is None:
        result["note"] = "onnx is not installed: the embedder's FLOPs were not counted"
        return result
    achieved = flops / (embed_ms / 1000.0)
    result.update({"embedder_mflop": round(flops / 1e6, 1),
                   "embedder_gflops": round(achieved / 1e9, 2),
                   "share_of_peak": round(achieved / peak, 3)})
    return result


COLD_START_FRAMES = 3  # demo frames of the enrolled person given to the cold kiosk


def cold_start(ctx: Any) -> dict[str, Any]:
    """Process start to the first recognised frame: `faceguard run --headless` in a fresh
    Python process on a library with the demo person enrolled and a folder of demo frames;
    the clock stops at its first "known" event line (3 agreeing frames). Also a bare
    interpreter's start, for scale."""
    engine: FaceEngine = ctx.engine
    with tempfile.TemporaryDirectory(prefix="faceguard-bench-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        frames = folder / "frames"
        frames.mkdir()
        # repeat window 0: every run logs its own first event
        save_settings(ctx.settings.replace(kiosk_name="bench", source=str(frames),
                                           repeat_window_s=0), data)
        library = FaceLibrary.open(data / "faceguard.db")
        try:
            person = library.add_person(DEMO_PERSON, actor="bench")
            vector, crop = _demo_person(engine)
            library.add_template(person.id, vector, engine.model_id, 1.0,
                                 encode_jpeg(crop), actor="bench")
        finally:
            library.close()
        source = DemoSource(loop=False)
        source.open()
        for index in range(COLD_START_FRAMES):
            image = source.render(40 + index)  # the enrolled person in view
            cv2.imwrite(str(frames / f"{index}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        command = [sys.executable, "-m", "faceguard", "--data-dir", str(data), "run",
                   "--source", str(frames), "--headless"]
        bare = _time_process([sys.executable, "-c", "pass"])
        runs = [_time_first_known(command) for _ in range(3)]
    return {"seconds": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs],
            "bare_python_s": round(bare, 3), "target_s": 2.0,
            "command": "faceguard run --source FOLDER --headless (first 'known' event)"}


def _time_process(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - start


def _time_first_known(command: list[str]) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if '"decision": "known"' in line:
                return time.perf_counter() - start
        raise FaceGuardError("the cold kiosk did not recognise the demo person: "
                             + (process.stderr.read() if process.stderr else "")[-300:])
    finally:
        process.kill()
        process.wait(timeout=10)


_MEMORY_CHILD = """
import json, sys
import faceguard.native_threads
import numpy as np
from faceguard.vision.engine import FaceEngine
from faceguard.library.matcher import Matcher

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

count = int(sys.argv[1])
start = rss()
engine = FaceEngine.load()
models = rss()
rng = np.random.default_rng(0)
matcher = Matcher()
rows = rng.standard_normal((count, 128), dtype=np.float32)
matcher.load(np.repeat(np.arange(count // 4 + 1), 4)[:count], rows)
del rows
matcher.search(rng.standard_normal(128).astype(np.float32))
print(json.dumps({"start_mb": start, "models_mb": models, "templates_mb": rss(),
                  "matcher_mb": matcher.nbytes / 2**20}))
"""


def memory_at(count: int) -> dict[str, Any]:
    """Resident memory of a fresh process with the models loaded and ``count`` templates in
    the matcher (Linux: /proc/self/statm), and the matcher's own arrays."""
    if not Path("/proc/self/statm").exists():
        raise FaceGuardError("resident memory is read from /proc (Linux only)")
    done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(count)], check=False,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise FaceGuardError(f"the memory probe failed: {done.stderr.strip()[-300:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"templates": count, **{k: round(v, 1) for k, v in figures.items()}}
