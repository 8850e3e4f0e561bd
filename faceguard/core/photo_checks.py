"""Whether a photo can be enrolled, and where a folder import finds its people and photos.

A photo needs exactly one clear, frontal face of at least the minimum size; every refusal
says why, in words an admin can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.vision.engine import FaceEngine, FaceObservation
from faceguard.vision.image_io import is_image_file

SEARCH_MIN_FACE = 20  # look for small faces too, so "too small" can be told from "no face"
SECONDARY_FACE_RATIO = 0.35  # another face this big (vs the main one) makes the photo ambiguous


@dataclass
class PhotoCheck:
    """Whether one photo can be enrolled; ``observation`` is set when it can."""

    source: str
    reason: str | None = None
    observation: FaceObservation | None = None
    content_sha256: str | None = None  # of the file (None for camera captures)

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_photo(engine: FaceEngine, image: np.ndarray, source: str,
                min_face: int) -> PhotoCheck:
    """Apply the enrolment rules: exactly one clear, frontal face of at least ``min_face``."""
    faces = engine.detect(image, min_face=min(SEARCH_MIN_FACE, min_face))
    if not faces:
        return PhotoCheck(source, "no face found")
    main = faces[0]
    # Any other face big enough to be enrolled itself, or a third of the main face's size,
    # makes the photo ambiguous; small faces far in the background are ignored.
    others = [f for f in faces[1:]
              if f.size >= min(min_face, SECONDARY_FACE_RATIO * main.size)]
    if others:
        return PhotoCheck(source, f"{len(others) + 1} faces found; one face per photo is needed")
    observation = engine.observe(image, [main], embed=False)[0]
    problems = observation.quality.problems(min_face)
    if problems:
        return PhotoCheck(source, "; ".join(problems))
    return PhotoCheck(source, None, observation)


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside a folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def person_folders(folder: Path) -> list[Path]:
    """The subfolders of an import folder (one per person), sorted; FaceGuardError if none."""
    if not folder.is_dir():
        raise FaceGuardError(f"{folder} is not a folder")
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    if not people:
        raise FaceGuardError(f"{folder} has no subfolders (one subfolder per person is expected)")
    return people
