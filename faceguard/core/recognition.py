"""Recognition of faces: detected faces of an image turned into matched identities.

One place for the path detect -> rank -> align -> embed -> 1:N search with the operating
point (the matcher's threshold and margin) -> the person's name. ``faceguard identify`` and the
self-test call :meth:`Recogniser.recognise` (every face of a photo); the kiosk pipeline finds
its faces itself (tracking) and calls :meth:`Recogniser.identify` with them, its visit fusion
passed as ``query``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from faceguard.library.database import FaceLibrary
from faceguard.library.match_decision import MatchResult
from faceguard.library.matcher import Matcher
from faceguard.vision.engine import FaceEngine, FaceObservation
from faceguard.vision.mtcnn import Face
from faceguard.vision.selection import Pick, why_not_used

# How face ``index``'s own embedding becomes the vector searched (the kiosk: its track's
# fused embedding); without one, the embedding itself is searched.
QueryOf = Callable[[int, np.ndarray], np.ndarray]


class LivenessScorer(Protocol):
    """What recognition needs of a liveness checker (faceguard.vision.liveness)."""

    def score(self, image_rgb: np.ndarray, mtcnn_box: np.ndarray) -> float | None:
        """Fused live probability 0..1, or None when the face cannot be judged."""


@dataclass
class Identity:
    """One face aligned, embedded and matched: ``person`` is the name or None (unknown)."""

    observation: FaceObservation
    match: MatchResult
    person: str | None

    @property
    def embedding(self) -> np.ndarray:
        """The face's own embedding (not the query it was searched with)."""
        assert self.observation.embedding is not None
        return self.observation.embedding


@dataclass
class RecognisedFace:
    """A face with its match: ``person`` is the recognised name or None (unknown)."""

    observation: FaceObservation
    match: MatchResult
    person: str | None
    liveness: float | None = None  # fused live probability (None: unsure or liveness off)
    why_not_used: str | None = None  # None for the face that counts (the first one)

    def to_json(self) -> dict[str, object]:
        """The CLI's JSON contract for one face."""
        face = self.observation.face
        return {
            "box": [round(float(v), 1) for v in face.box],
            "score": round(face.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
            "person": self.person,
            "similarity": round(float(self.match.similarity), 4),
            "liveness": None if self.liveness is None else round(float(self.liveness), 4),
            "used": self.why_not_used is None,
            "why_not_used": self.why_not_used,
        }


class Recogniser:
    """Identifies faces against the matcher, with the people's names from the library."""

    def __init__(self, engine: FaceEngine, matcher: Matcher, library: FaceLibrary, *,
                 liveness: LivenessScorer | None = None) -> None:
        self.engine = engine
        self.matcher = matcher
        self.library = library
        self.liveness = liveness  # scores every face of recognise() when given
        self._names: dict[int, str] = {}

    def person_name(self, person_id: int) -> str:
        if person_id not in self._names:
            person = self.library.get_person(person_id)
            self._names[person_id] = person.name if person else f"#{person_id}"
        return self._names[person_id]

    def forget_names(self) -> None:
        """Drop cached names (after a rename or removal)."""
        self._names.clear()

    def find_faces(self, image: np.ndarray, min_face: int | None = None, *,
                   max_side: int | None = None, pick: Pick = "largest") -> list[Face]:
        """The faces of an image in the order they count (:meth:`FaceEngine.detect`)."""
        return self.engine.detect(image, min_face, max_side=max_side, pick=pick)

    def identify(self, image: np.ndarray, faces: Sequence[Face], *,
                 query: QueryOf | None = None) -> list[Identity]:
        """Align and embed the given faces (one embedder batch) and match them (one search):
        each face's identity, same order. ``query`` turns face ``i``'s embedding into the
        vector that is searched (default: the embedding itself)."""
        if not faces:
            return []
        observations = self.engine.observe(image, list(faces))
        vectors = []
        for index, observation in enumerate(observations):
            assert observation.embedding is not None
            vector = observation.embedding
            vectors.append(vector if query is None else query(index, vector))
        matches = self.matcher.search(np.stack(vectors))
        return [Identity(o, m, None if m.person_id is None else self.person_name(m.person_id))
                for o, m in zip(observations, matches, strict=True)]

    def recognise(self, image: np.ndarray, min_face: int | None = None,
                  pick: Pick = "largest") -> list[RecognisedFace]:
        """All faces of an image in the order they count (the first is the one used; the
        others say why not), each with its decision."""
        faces = self.find_faces(image, min_face, pick=pick)
        checker = self.liveness
        height, width = image.shape[:2]
        return [RecognisedFace(found.observation, found.match, found.person,
                               checker.score(image, face.box) if checker else None,
                               None if index == 0 else
                               why_not_used(face, faces[0], width, height, pick))
                for index, (face, found) in enumerate(
                    zip(faces, self.identify(image, faces), strict=True))]
