"""Recognition of the faces in one image: detection, embedding and the open-set decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from faceguard.library.database import FaceLibrary
from faceguard.library.match_decision import MatchResult
from faceguard.library.matcher import Matcher
from faceguard.vision.engine import FaceEngine, FaceObservation
from faceguard.vision.selection import Pick, why_not_used


class LivenessScorer(Protocol):
    """What recognition needs of a liveness checker (faceguard.vision.liveness)."""

    def score(self, image_rgb: np.ndarray, mtcnn_box: np.ndarray) -> float | None:
        """Fused live probability 0..1, or None when the face cannot be judged."""


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
    """Identifies every face of an image against the matcher."""

    def __init__(self, engine: FaceEngine, matcher: Matcher, library: FaceLibrary, *,
                 liveness: LivenessScorer | None = None) -> None:
        self.engine = engine
        self.matcher = matcher
        self.library = library
        self.liveness = liveness  # scores every face when given
        self._names: dict[int, str] = {}

    def person_name(self, person_id: int) -> str:
        if person_id not in self._names:
            person = self.library.get_person(person_id)
            self._names[person_id] = person.name if person else f"#{person_id}"
        return self._names[person_id]

    def forget_names(self) -> None:
        """Drop cached names (after a rename or removal)."""
        self._names.clear()

    def recognise(self, image: np.ndarray, min_face: int | None = None,
                  pick: Pick = "largest") -> list[RecognisedFace]:
        """All faces of an image in the order they count (the first is the one used; the
        others say why not), each with its decision."""
        observations = self.engine.analyze(image, min_face, pick=pick)
        if not observations:
            return []
        vectors = np.stack([o.embedding for o in observations if o.embedding is not None])
        matches = self.matcher.search(vectors)
        checker = self.liveness
        height, width = image.shape[:2]
        chosen = observations[0].face
        return [RecognisedFace(o, m, self.person_name(m.person_id)
                               if m.person_id is not None else None,
                               checker.score(image, o.face.box) if checker else None,
                               None if index == 0 else
                               why_not_used(o.face, chosen, width, height, pick))
                for index, (o, m) in enumerate(zip(observations, matches, strict=True))]
