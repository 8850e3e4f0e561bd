"""Enrolment: turning photos into face templates, with a reason for every rejected photo."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.library.database import FaceLibrary, Person
from faceguard.library.matcher import Matcher
from faceguard.vision.engine import FaceEngine, FaceObservation
from faceguard.vision.image_io import encode_jpeg, load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SEARCH_MIN_FACE = 20  # look for small faces too, so "too small" can be told from "no face"
SECONDARY_FACE_RATIO = 0.35  # another face this big (vs the main one) makes the photo ambiguous


@dataclass
class PhotoCheck:
    """Whether one photo can be enrolled; ``observation`` is set when it can."""

    source: str
    reason: str | None = None
    observation: FaceObservation | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass
class PhotoResult:
    """Outcome of enrolling one photo."""

    source: str
    accepted: bool
    reason: str | None = None
    template_id: int | None = None
    warning: str | None = None
    crop: np.ndarray | None = field(default=None, repr=False)


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
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class Enroller:
    """Adds people and their photos to the library, keeping the matcher in sync."""

    def __init__(self, engine: FaceEngine, library: FaceLibrary, matcher: Matcher,
                 min_face: int, actor: str = "admin") -> None:
        self.engine = engine
        self.library = library
        self.matcher = matcher
        self.min_face = min_face
        self.actor = actor

    def check_file(self, path: Path) -> PhotoCheck:
        """Load and check one photo file (unreadable files become a rejection reason)."""
        try:
            image = load_image(path)
        except FaceGuardError as error:
            return PhotoCheck(str(path), str(error).removeprefix(f"{path}: "))
        return check_photo(self.engine, image, str(path), self.min_face)

    def check_images(self, sources: Sequence[tuple[str, np.ndarray]]) -> list[PhotoCheck]:
        """Check in-memory images (camera captures)."""
        return [check_photo(self.engine, image, name, self.min_face) for name, image in sources]

    def enroll(self, name: str, checks: Iterable[PhotoCheck], *, employee_id: str | None = None,
               department: str | None = None) -> tuple[Person | None, list[PhotoResult]]:
        """Enrol the accepted photos under ``name`` (created if new; nothing is created when
        no photo is accepted). Warns when a face already matches another person."""
        checks = list(checks)
        good = [c for c in checks if c.ok and c.observation is not None]
        results = {c.source: PhotoResult(c.source, False, c.reason) for c in checks if not c.ok}
        person = None
        if good:
            crops = np.stack([c.observation.crop for c in good if c.observation is not None])
            vectors = self.engine.embedder.embed(crops)
            person = self.library.find_person_by_name(name)
            if person is None:
                person = self.library.add_person(name, employee_id, department, actor=self.actor)
            for check, vector in zip(good, vectors, strict=True):
                assert check.observation is not None
                warning = self._lookalike_warning(person.id, vector)
                template = self.library.add_template(
                    person.id, vector, self.engine.model_id, check.observation.quality.score,
                    encode_jpeg(check.observation.crop), Path(check.source).name,
                    actor=self.actor)
                self.matcher.add(person.id, vector)
                results[check.source] = PhotoResult(check.source, True, None, template.id,
                                                    warning, check.observation.crop)
        ordered = [results[c.source] for c in checks]
        return person, ordered

    def enroll_files(self, name: str, paths: Sequence[Path], *, employee_id: str | None = None,
                     department: str | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[Person | None, list[PhotoResult]]:
        """Check and enrol photo files."""
        checks = []
        for index, path in enumerate(paths):
            checks.append(self.check_file(path))
            if progress:
                progress(index + 1, len(paths))
        return self.enroll(name, checks, employee_id=employee_id, department=department)

    def _lookalike_warning(self, person_id: int, vector: np.ndarray) -> str | None:
        for result in self.matcher.search(vector):
            other = result.best_person_id
            if other is not None and other != person_id and \
                    result.similarity >= self.matcher.threshold:
                found = self.library.get_person(other)
                who = found.name if found else f"person {other}"
                return f"this face already matches {who} (similarity {result.similarity:.2f})"
        return None
