"""The pipelines compared on LFW, as embed functions, and the time each stage takes: ours
(:class:`~faceguard.vision.engine.FaceEngine` with the central pick), dlib's (the teacher,
with a median fallback box) and SFace's (our MTCNN, 5-point alignment at 112).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from faceguard.evaluation.lfw_embeddings import EmbedFn
from faceguard.vision.engine import FaceEngine
from faceguard.vision.selection import Pick, nearest_centre

if TYPE_CHECKING:
    from faceguard.training.dlib_teacher import DlibTeacher
    from faceguard.training.sface import SFaceTeacher
    from faceguard.vision.mtcnn import MtcnnDetector

LFW_MIN_FACE = 40  # LFW faces are ~100 px in a 250x250 image
LFW_PICK: Pick = "central"  # LFW photos are centred on the person the pair is about
FALLBACK_SAMPLE = 100
TEACHER_MODEL_ID = "dlib-resnet-v1_hog-5pt_centre-fallback"
SFACE_MODEL_ID = "sface-2021dec-int8bq_mtcnn40-5pt112_central"


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
        from faceguard.training.dlib_teacher import absolute_box, median_box

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
        from faceguard.training.dlib_teacher import l2_normalise

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

    from faceguard.training.dlib_teacher import (
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
