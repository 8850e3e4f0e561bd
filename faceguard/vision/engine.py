"""The vision pipeline in one object: detect -> align -> quality -> embed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.vision.alignment import align_face
from faceguard.vision.embedder import Embedder
from faceguard.vision.mtcnn import DEFAULT_MIN_FACE, Face, MtcnnDetector
from faceguard.vision.quality import FaceQuality, measure_quality
from faceguard.vision.selection import Pick, rank_faces

MAX_DETECT_SIDE = 1600  # larger photos are detected on a downscaled copy, aligned at full size


@dataclass
class FaceObservation:
    """One face found in an image, aligned, measured and (optionally) embedded."""

    face: Face
    crop: np.ndarray
    quality: FaceQuality
    embedding: np.ndarray | None = None


class FaceEngine:
    """Detector + aligner + embedder, used by the CLI, the kiosk worker and evaluation."""

    def __init__(self, detector: MtcnnDetector, embedder: Embedder,
                 max_detect_side: int = MAX_DETECT_SIDE) -> None:
        self.detector = detector
        self.embedder = embedder
        self.max_detect_side = max_detect_side

    @classmethod
    def load(cls, *, min_face: int = DEFAULT_MIN_FACE, threads: int = 1,
             embedder_path: str | Path | None = None, embedder_sha256: str | None = None,
             mirror: bool = False) -> FaceEngine:
        """The engine with the bundled models (or another embedder file)."""
        detector = MtcnnDetector(min_face=min_face, threads=threads)
        embedder = Embedder(embedder_path, sha256=embedder_sha256, threads=threads,
                            mirror=mirror)
        return cls(detector, embedder)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def min_face(self) -> int:
        return self.detector.min_face

    def detect(self, image: np.ndarray, min_face: int | None = None,
               max_side: int | None = None, pick: Pick = "largest") -> list[Face]:
        """Faces in an RGB image in the order they count (whole faces before faces cut by the
        border, then largest first, or nearest the centre with ``pick="central"``; see
        :mod:`faceguard.vision.selection`). Images larger than ``max_side`` (default
        ``max_detect_side``) are searched on a downscaled copy, coordinates mapped back."""
        min_face = int(min_face or self.detector.min_face)
        max_side = max_side or self.max_detect_side
        height, width = image.shape[:2]
        longest = max(height, width)
        if longest <= max_side:
            faces = self.detector.detect(image, min_face)
        else:
            factor = max_side / longest
            small = cv2.resize(image, (round(width * factor), round(height * factor)),
                               interpolation=cv2.INTER_AREA)
            found = self.detector.detect(small, max(12, round(min_face * factor)))
            faces = [face.scaled(1.0 / factor) for face in found]
        return rank_faces(faces, width, height, pick)

    def follow(self, image: np.ndarray, faces: list[Face],
               max_side: int | None = None) -> list[Face | None]:
        """Each face of the previous frame found again near its box (None: lost), with the
        detector's later stages only (:meth:`MtcnnDetector.follow`); big images are searched
        on the same downscaled copy as :meth:`detect`."""
        max_side = max_side or self.max_detect_side
        height, width = image.shape[:2]
        longest = max(height, width)
        if longest <= max_side:
            return self.detector.follow(image, [face.box for face in faces])
        factor = max_side / longest
        small = cv2.resize(image, (round(width * factor), round(height * factor)),
                           interpolation=cv2.INTER_AREA)
        found = self.detector.follow(small, [face.box * factor for face in faces])
        return [None if face is None else face.scaled(1.0 / factor) for face in found]

    def observe(self, image: np.ndarray, faces: list[Face], embed: bool = True
                ) -> list[FaceObservation]:
        """Align, measure and embed the given faces of an image (one embedder batch)."""
        crops = [align_face(image, face.landmarks) for face in faces]
        observations = [FaceObservation(face, crop, measure_quality(face, crop))
                        for face, crop in zip(faces, crops, strict=True)]
        if embed and crops:
            vectors = self.embedder.embed(np.stack(crops))
            for observation, vector in zip(observations, vectors, strict=True):
                observation.embedding = vector
        return observations

    def analyze(self, image: np.ndarray, min_face: int | None = None,
                embed: bool = True, pick: Pick = "largest") -> list[FaceObservation]:
        """Every face of an image in the order they count, aligned and embedded."""
        return self.observe(image, self.detect(image, min_face, pick=pick), embed)

    def embed_largest(self, image: np.ndarray, min_face: int | None = None,
                      pick: Pick = "largest") -> FaceObservation | None:
        """The face that counts (by ``pick``), embedded; None when there is no face."""
        faces = self.detect(image, min_face, pick=pick)
        return self.observe(image, faces[:1])[0] if faces else None
