"""LFW verification of the whole pipeline (detect -> align -> embed), optionally next to dlib's.

Scores: the standard 10-fold accuracy on the pairs of pairs.txt, and TAR at FAR 1e-3 / 1e-4
over ALL pairs among the images those pairs name (every same-person pair is genuine, every
cross-identity pair an impostor: about 29.6 M for the 7,701 images). An image without a face
gives similarity -1 to every pair it is in (a genuine pair with it is a failure).
Embeddings are cached per model under ``train_cache_dir()/eval`` so a re-run is instant.
LFW is for evaluation only: never train or calibrate the shipped threshold on it.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceguard.errors import FaceGuardError, ImageError
from faceguard.evaluation.metrics import (
    FoldResult,
    ImpostorScores,
    Pair,
    PairsFormatError,
    RocCurve,
    far_key,
    kfold_accuracy,
    read_pairs,
    tar_at_threshold,
)
from faceguard.paths import train_cache_dir
from faceguard.vision.engine import FaceEngine
from faceguard.vision.image_io import load_image
from faceguard.vision.selection import Pick, nearest_centre

if TYPE_CHECKING:
    from faceguard.training.sface import SFaceTeacher
    from faceguard.training.teacher import DlibTeacher
    from faceguard.vision.mtcnn import MtcnnDetector

LFW_MIN_FACE = 40  # LFW faces are ~100 px in a 250x250 image
REPORT_FARS = (1e-3, 1e-4)
BLOCK_ROWS = 512
SAVE_EVERY = 250
TIMING_IMAGES = 10
FALLBACK_SAMPLE = 100
STATUS_NO_FACE, STATUS_FACE, STATUS_FALLBACK = 0, 1, 2
TEACHER_MODEL_ID = "dlib-resnet-v1_hog-5pt_centre-fallback"
SFACE_MODEL_ID = "sface-2021dec-int8bq_mtcnn40-5pt112_central"
TEACHER_NAMES = {"dlib": "dlib ResNet (teacher)", "sface": "SFace (teacher)"}
CALIBRATION_NOTE = ("calibrated on LFW impostor pairs: for reporting only; calibrate the "
                    "shipped threshold on a held-out non-LFW set")

EmbedFn = Callable[[np.ndarray], np.ndarray | None]
ProgressFn = Callable[[str, int, int], None]
NoteFn = Callable[[str], None]


class DatasetError(FaceGuardError):
    """The LFW folder is missing or incomplete."""


def no_progress(label: str, done: int, total: int) -> None:
    """Progress sink that ignores everything."""


def no_note(message: str) -> None:
    """Note sink that ignores everything."""


# -- the dataset ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LfwSubset:
    """The pairs to score and the unique images they name."""

    root: Path
    pairs: list[Pair]
    images: list[str]
    """Unique image paths relative to ``root``, sorted."""
    identities: list[str]
    """Person name of each image."""
    pair_rows: np.ndarray
    """(P, 2) indices into ``images``."""
    labels: np.ndarray
    folds: np.ndarray
    total_pairs: int


def select_pairs(pairs: Sequence[Pair], limit: int | None) -> list[Pair]:
    """All pairs, or ``limit`` of them spread round-robin over every (fold, label) group."""
    if limit is None or limit >= len(pairs):
        return list(pairs)
    groups: dict[tuple[int, bool], list[Pair]] = {}
    for pair in pairs:
        groups.setdefault((pair.fold, not pair.same), []).append(pair)
    ordered = [groups[key] for key in sorted(groups)]
    chosen: list[Pair] = []
    depth = 0
    while len(chosen) < limit:
        for group in ordered:
            if depth < len(group) and len(chosen) < limit:
                chosen.append(group[depth])
        depth += 1
    return chosen


def load_subset(dataset_dir: str | os.PathLike[str], limit_pairs: int | None = None
                ) -> LfwSubset:
    """Read pairs.txt and check every image it names is there; DatasetError otherwise."""
    root = Path(dataset_dir)
    pairs_file = root / "pairs.txt"
    if not root.is_dir():
        raise DatasetError(f"LFW dataset not found: {root} is not a folder (use --dataset)")
    if not pairs_file.is_file():
        raise DatasetError(f"LFW dataset incomplete: {pairs_file} is missing")
    try:
        all_pairs = read_pairs(pairs_file)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {pairs_file}: {error}") from error
    except PairsFormatError as error:
        raise DatasetError(f"{pairs_file}: {error}") from error
    if limit_pairs is not None and limit_pairs < 3:
        raise DatasetError("--limit-pairs must be at least 3 (pairs in two folds are needed)")
    pairs = select_pairs(all_pairs, limit_pairs)
    people = {p.image_a: p.name_a for p in pairs} | {p.image_b: p.name_b for p in pairs}
    images = sorted(people)
    missing = [name for name in images if not (root / name).is_file()]
    if missing:
        raise DatasetError(f"LFW dataset incomplete: {len(missing)} images named by "
                           f"pairs.txt are missing (first: {root / missing[0]})")
    index = {name: i for i, name in enumerate(images)}
    rows = np.array([[index[p.image_a], index[p.image_b]] for p in pairs], dtype=np.int64)
    return LfwSubset(root, pairs, images, [people[name] for name in images], rows,
                     np.array([p.same for p in pairs], dtype=bool),
                     np.array([p.fold for p in pairs], dtype=np.int64), len(all_pairs))


def sample_images(subset: LfwSubset, count: int = TIMING_IMAGES) -> list[np.ndarray]:
    """``count`` evenly spaced images of the subset, loaded as RGB."""
    picks = sorted({int(i) for i in np.linspace(0, len(subset.images) - 1,
                                                min(count, len(subset.images)))})
    return [load_image(subset.root / subset.images[i]) for i in picks]


# -- embeddings and their cache ---------------------------------------------------------------

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


# -- scoring ----------------------------------------------------------------------------------

@dataclass
class VerificationScores:
    """Everything measured for one embedder."""

    model_id: str
    images: int
    images_without_face: int
    images_fallback: int
    pairs: int
    pairs_failed: int
    genuine_pairs_failed: int
    folds: FoldResult
    tar_at_far: dict[float, float]
    threshold_at_far: dict[float, float]
    genuine_pairs_all: int
    impostor_pairs_all: int
    roc: RocCurve = field(repr=False)
    calibration: tuple[float, float] | None = None
    ms_per_face: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the report (fractions, not percentages)."""
        report: dict[str, Any] = {
            "model_id": self.model_id,
            "accuracy_mean": round(self.folds.mean, 5),
            "accuracy_std": round(self.folds.std, 5),
            "fold_accuracies": [round(a, 5) for a in self.folds.accuracies],
            "tar_at_far": {far_key(f): round(v, 5) for f, v in self.tar_at_far.items()},
            "threshold_at_far": {far_key(f): round(v, 5)
                                 for f, v in self.threshold_at_far.items()},
            "images": self.images,
            "images_without_face": self.images_without_face,
            "pairs": self.pairs,
            "pairs_failed": self.pairs_failed,
            "genuine_pairs_failed": self.genuine_pairs_failed,
            "genuine_pairs_all": self.genuine_pairs_all,
            "impostor_pairs_all": self.impostor_pairs_all,
            "ms_per_face": self.ms_per_face,
        }
        if self.images_fallback:
            report["images_fallback_box"] = self.images_fallback
        if self.calibration is not None:
            report["calibration"] = {"far": self.calibration[0],
                                     "threshold": round(self.calibration[1], 5),
                                     "note": CALIBRATION_NOTE}
        return report


def pair_scores(pair_rows: np.ndarray, vectors: np.ndarray, has_face: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair; -1 where either image has no face."""
    a, b = pair_rows[:, 0], pair_rows[:, 1]
    scores = np.einsum("ij,ij->i", vectors[a], vectors[b]).astype(np.float64)
    scores[~(has_face[a] & has_face[b])] = -1.0
    return scores


def all_pair_scores(identities: Sequence[str], vectors: np.ndarray, has_face: np.ndarray,
                    max_far: float, block_rows: int = BLOCK_ROWS
                    ) -> tuple[np.ndarray, ImpostorScores]:
    """Genuine scores of every same-identity pair, and impostor statistics of all the others.

    The similarity matrix is computed in row blocks (upper triangle only); the impostor
    side keeps only the top scores needed for ``max_far`` plus a histogram.
    """
    _, ids = np.unique(np.asarray(identities), return_inverse=True)
    n = len(ids)
    sizes = np.bincount(ids)
    genuine_total = int(np.sum(sizes * (sizes - 1) // 2))
    impostor_total = n * (n - 1) // 2 - genuine_total
    impostors = ImpostorScores(math.floor(max_far * impostor_total + 1e-9) + 1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    failed = ~np.asarray(has_face, dtype=bool)
    genuine: list[np.ndarray] = []
    for lo in range(0, n, block_rows):
        hi = min(n, lo + block_rows)
        sims = vectors[lo:hi] @ vectors[lo:].T
        sims[failed[lo:hi], :] = -1.0
        sims[:, failed[lo:]] = -1.0
        upper = np.arange(lo, n)[None, :] > np.arange(lo, hi)[:, None]
        same = ids[lo:hi, None] == ids[None, lo:]
        genuine.append(sims[upper & same])
        impostors.add(sims[upper & ~same])
    scores = np.concatenate(genuine) if genuine else np.empty(0, np.float32)
    return scores.astype(np.float64), impostors


def score_subset(subset: LfwSubset, embeddings: Embeddings,
                 fars: Sequence[float] = REPORT_FARS,
                 calibrate_far: float | None = None) -> VerificationScores:
    """10-fold accuracy on the pairs, TAR at the FARs over all pairs, ROC, calibration."""
    has_face = embeddings.has_face
    scores = pair_scores(subset.pair_rows, embeddings.vectors, has_face)
    folds = kfold_accuracy(scores, subset.labels, subset.folds)
    failed = ~(has_face[subset.pair_rows[:, 0]] & has_face[subset.pair_rows[:, 1]])
    wanted = [*fars, *([calibrate_far] if calibrate_far is not None else [])]
    genuine, impostors = all_pair_scores(subset.identities, embeddings.vectors, has_face,
                                         max(wanted))
    thresholds = {far: impostors.threshold(far) for far in fars}
    tars = {far: tar_at_threshold(genuine, t) for far, t in thresholds.items()}
    calibration = None
    if calibrate_far is not None:
        calibration = (calibrate_far, impostors.threshold(calibrate_far))
    return VerificationScores(
        model_id=embeddings.model_id, images=len(subset.images),
        images_without_face=int(np.sum(~has_face)),
        images_fallback=int(np.sum(embeddings.status == STATUS_FALLBACK)),
        pairs=len(subset.pairs), pairs_failed=int(failed.sum()),
        genuine_pairs_failed=int(np.sum(failed & subset.labels)), folds=folds,
        tar_at_far=tars, threshold_at_far=thresholds, genuine_pairs_all=int(genuine.size),
        impostor_pairs_all=impostors.count, roc=impostors.roc(genuine), calibration=calibration)


def evaluate_lfw(dataset_dir: str | os.PathLike[str], embed_image: EmbedFn, *, model_id: str,
                 cache_key: str | None = None, limit_pairs: int | None = None,
                 fars: Sequence[float] = REPORT_FARS, calibrate_far: float | None = None,
                 cache_dir: Path | None = None, progress: ProgressFn = no_progress,
                 note: NoteFn = no_note) -> VerificationScores:
    """Embed the LFW pair images (cached per ``cache_key``, default ``model_id``) and score."""
    subset = load_subset(dataset_dir, limit_pairs)
    embeddings = embed_subset(subset, embed_image, model_id=model_id, cache_key=cache_key,
                              cache_dir=cache_dir, progress=progress, note=note)
    note(f"{model_id}: scoring {len(subset.pairs)} pairs and all pairs of "
         f"{len(subset.images)} images")
    return score_subset(subset, embeddings, fars, calibrate_far)


# -- the embedders ------------------------------------------------------------------------------

LFW_PICK: Pick = "central"  # LFW photos are centred on the person the pair is about


def engine_embed_fn(engine: FaceEngine, min_face: int = LFW_MIN_FACE,
                    pick: Pick = LFW_PICK) -> EmbedFn:
    """The product pipeline as an embed function: ``FaceEngine.embed_largest`` with ``pick``."""
    def embed(image: np.ndarray) -> np.ndarray | None:
        observation = engine.embed_largest(image, min_face=min_face, pick=pick)
        return None if observation is None else observation.embedding
    return embed


def _median_ms(samples: Sequence[float]) -> float | None:
    """Median of seconds, in milliseconds (None for no samples)."""
    return round(statistics.median(samples) * 1000.0, 3) if samples else None


def _timed(run: Callable[..., object], *args: Any) -> float:
    """Seconds one call ``run(*args)`` takes."""
    start = time.perf_counter()
    run(*args)
    return time.perf_counter() - start


def time_engine(engine: FaceEngine, images: Sequence[np.ndarray], min_face: int = LFW_MIN_FACE,
                repeats: int = 5) -> dict[str, float | None]:
    """Median ms: detector per image, embedder per single face, whole pipeline per image."""
    if not images:
        return {"detector": None, "embedder": None, "pipeline": None}
    engine.detect(images[0], min_face)  # warm-up
    detect, embed, pipeline, crops = [], [], [], []
    for image in images:
        start = time.perf_counter()
        faces = engine.detect(image, min_face)
        detect.append(time.perf_counter() - start)
        if faces:
            crops.append(engine.observe(image, faces[:1], embed=False)[0].crop)
        pipeline.append(_timed(engine.embed_largest, image, min_face))
    for crop in crops:
        engine.embedder.embed(crop)
        embed += [_timed(engine.embedder.embed, crop) for _ in range(repeats)]
    return {"detector": _median_ms(detect), "embedder": _median_ms(embed),
            "pipeline": _median_ms(pipeline)}


class TeacherEmbed:
    """dlib's pipeline (``DlibTeacher``): HOG box, 5 points, ResNet descriptor, no mirror.

    Where HOG finds no face, the median HOG box of a sample of the images is used instead
    (as for the reference figure in docs/measured.md); ``used_fallback`` says so.
    """

    def __init__(self, teacher: DlibTeacher, sample: Callable[[], Sequence[np.ndarray]]) -> None:
        """``sample`` gives images to derive the fallback box from (called at most once)."""
        self.teacher = teacher
        self.sample = sample
        self.used_fallback = False
        self._relative_box: tuple[float, float, float, float] | None = None

    def fallback_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The fallback box for an image of this size (dlib convention)."""
        from faceguard.training.teacher import absolute_box, median_box

        if self._relative_box is None:
            found = []
            for image in self.sample():
                box = self.teacher.detect(image)
                if box is not None:
                    h, w = image.shape[:2]
                    found.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
            self._relative_box = median_box(found) if found else (0.3, 0.3, 0.7, 0.7)
        return absolute_box(self._relative_box, width, height)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """L2-normalised descriptor of the largest face (or of the fallback box)."""
        from faceguard.training.teacher import l2_normalise

        vector = self.teacher.embed_largest(image, mirror=False)
        self.used_fallback = vector is None
        if vector is None:
            box = self.fallback_box(image.shape[1], image.shape[0])
            result = self.teacher.describe(image, fallback_box=box)
            vector = None if result is None else l2_normalise(result.vector)
        return vector


class SFaceEmbed:
    """SFace's pipeline: our MTCNN, the face nearest the centre, 5-point alignment at 112."""

    def __init__(self, teacher: SFaceTeacher | None = None,
                 detector: MtcnnDetector | None = None, min_face: int = LFW_MIN_FACE,
                 threads: int = 1) -> None:
        """Loads the prepared SFace file from the training cache unless one is given."""
        from faceguard.training.sface import SFaceTeacher
        from faceguard.vision.mtcnn import MtcnnDetector

        self.teacher = teacher or SFaceTeacher(threads=threads)
        self.detector = detector or MtcnnDetector(min_face=min_face, threads=threads)
        self.min_face = min_face

    def crop(self, image: np.ndarray) -> np.ndarray | None:
        """The aligned 112x112 crop of the central face, or None."""
        from faceguard.training.sface import SFACE_SIZE
        from faceguard.vision.alignment import align_face

        face = nearest_centre(self.detector.detect(image, self.min_face), image.shape[1],
                              image.shape[0])
        return None if face is None else align_face(image, face.landmarks, SFACE_SIZE)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """L2-normalised SFace vector of the central face, or None without a face."""
        crop = self.crop(image)
        return None if crop is None else self.teacher.embed(crop)[0]


def time_sface(embed: SFaceEmbed, images: Sequence[np.ndarray], repeats: int = 3
               ) -> dict[str, float | None]:
    """Median ms: MTCNN per image, SFace per face, the whole pipeline per image."""
    detect, network, pipeline = [], [], []
    for image in images:
        detect.append(_timed(embed.detector.detect, image, embed.min_face))
        pipeline.append(_timed(embed, image))
        crop = embed.crop(image)
        if crop is not None:
            network += [_timed(embed.teacher.embed, crop) for _ in range(repeats)]
    return {"detector": _median_ms(detect), "embedder": _median_ms(network),
            "pipeline": _median_ms(pipeline)}


def time_teacher(teacher: DlibTeacher, images: Sequence[np.ndarray], repeats: int = 3
                 ) -> dict[str, float | None]:
    """Median ms: HOG per image, one ResNet descriptor per face, ``embed_largest`` per image.

    ``embed_largest`` computes the chip's and the mirrored chip's descriptors in one call,
    so the pipeline holds two descriptors; "embedder" times a single one.
    """
    import dlib

    from faceguard.training.teacher import (
        CHIP_PADDING,
        CHIP_SIZE,
        DESCRIPTOR_FILE,
        PREDICTOR_FILE,
        dlib_models_dir,
    )

    folder = dlib_models_dir()
    predictor = dlib.shape_predictor(str(folder / PREDICTOR_FILE))
    encoder = dlib.face_recognition_model_v1(str(folder / DESCRIPTOR_FILE))
    detect, embed, pipeline = [], [], []
    for image in images:
        start = time.perf_counter()
        box = teacher.detect(image)
        detect.append(time.perf_counter() - start)
        pipeline.append(_timed(teacher.embed_largest, image, False))
        if box is None:
            continue
        shape = predictor(image, dlib.rectangle(*box))
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        embed += [_timed(encoder.compute_face_descriptor, [chip]) for _ in range(repeats)]
    return {"detector": _median_ms(detect), "embedder": _median_ms(embed),
            "pipeline": _median_ms(pipeline)}


# -- output -------------------------------------------------------------------------------------

def speed_ratios(ours: VerificationScores, teacher: VerificationScores
                 ) -> dict[str, float | None]:
    """Teacher time / our time, per stage (how many times faster ours is)."""
    ratios: dict[str, float | None] = {}
    for stage in ("embedder", "detector", "pipeline"):
        a, b = ours.ms_per_face.get(stage), teacher.ms_per_face.get(stage)
        ratios[stage] = round(b / a, 2) if a and b else None
    return ratios


def report_json(subset_info: dict[str, Any], ours: VerificationScores,
                teacher: VerificationScores | None = None) -> dict[str, Any]:
    """The ``--json`` object: our scores at the top level, the teacher's under "teacher"."""
    report = {**subset_info, **ours.to_json()}
    if teacher is not None:
        report["teacher"] = teacher.to_json()
        report["speed_ratio_teacher_over_ours"] = speed_ratios(ours, teacher)
    return report


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def format_report(header: str, ours: VerificationScores,
                  teacher: VerificationScores | None = None,
                  teacher_name: str = TEACHER_NAMES["dlib"]) -> str:
    """A human-readable table, one column per embedder."""
    columns = [ours] + ([teacher] if teacher is not None else [])
    names = [ours.model_id] + ([teacher_name] if teacher is not None else [])
    rows: list[tuple[str, list[str]]] = [
        (f"{len(ours.folds.accuracies)}-fold accuracy",
         [f"{100 * c.folds.mean:.2f}% +- {100 * c.folds.std:.2f}" for c in columns])]
    for far in ours.tar_at_far:
        rows.append((f"TAR at FAR {far_key(far)}",
                     [f"{100 * c.tar_at_far[far]:.2f}% (thr {c.threshold_at_far[far]:.4f})"
                      for c in columns]))
    if ours.calibration is not None:
        rows.append((f"threshold at FAR {far_key(ours.calibration[0])} *",
                     [f"{c.calibration[1]:.4f}" if c.calibration else "n/a" for c in columns]))
    rows += [
        ("images without a face", [f"{c.images_without_face} of {c.images}"
                                   + (f" ({c.images_fallback} fallback box)"
                                      if c.images_fallback else "") for c in columns]),
        ("pairs failed (genuine)", [f"{c.pairs_failed} ({c.genuine_pairs_failed})"
                                    for c in columns]),
        ("all pairs: genuine / impostor", [f"{c.genuine_pairs_all:,} / {c.impostor_pairs_all:,}"
                                           for c in columns]),
        ("embedder, per face", [_ms(c.ms_per_face.get("embedder")) for c in columns]),
        ("detector, per image", [_ms(c.ms_per_face.get("detector")) for c in columns]),
        ("whole pipeline, per image", [_ms(c.ms_per_face.get("pipeline")) for c in columns]),
    ]
    width = max(28, *(len(n) + 2 for n in names), *(len(v) + 2 for _, vs in rows for v in vs))
    lines = [header, "", f"{'':<30}" + "".join(f"{n:<{width}}" for n in names)]
    lines += [f"{label:<30}" + "".join(f"{v:<{width}}" for v in values)
              for label, values in rows]
    if teacher is not None:
        ratios = speed_ratios(ours, teacher)
        lines.append("")
        lines.append("speed, teacher time / ours: " + ", ".join(
            f"{stage} {'n/a' if r is None else f'{r:.1f}x'}" for stage, r in ratios.items()))
        if teacher.model_id == TEACHER_MODEL_ID:
            lines.append("(the teacher's pipeline, DlibTeacher.embed_largest, computes two "
                         "descriptors: the chip's and its mirror's; 'embedder' times one)")
    coarse = [far for far in ours.tar_at_far if far * ours.impostor_pairs_all < 1]
    if coarse:
        lines.append("")
        lines.append(f"note: only {ours.impostor_pairs_all:,} impostor pairs: at FAR "
                     f"{', '.join(far_key(f) for f in coarse)} the threshold is simply the "
                     "highest impostor score")
    if ours.calibration is not None:
        lines.append("")
        lines.append(f"* {CALIBRATION_NOTE}")
    return "\n".join(line.rstrip() for line in lines)
