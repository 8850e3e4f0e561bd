"""The open-set operating point and what one match reports.

A face is recognised ("known") only when its best person's similarity is at least
``threshold`` *and* exceeds the best other person's similarity by at least ``margin``;
otherwise it is "unknown". The matcher (:mod:`faceguard.library.matcher`) finds the two
people; this module decides and describes the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["known", "unknown"]

# Used only for a model that has no calibrated threshold (and in tests).
UNCALIBRATED_THRESHOLD = 0.5
# Similarity reported when there is nobody to compare with (lowest possible cosine).
NO_MATCH_SIMILARITY = -1.0


def decide(similarity: float, runner_up: float | None, threshold: float,
           margin: float) -> Decision:
    """Known iff ``similarity >= threshold`` and its lead over ``runner_up`` is ``>= margin``."""
    if similarity < threshold:
        return "unknown"
    if runner_up is not None and similarity - runner_up < margin:
        return "unknown"
    return "known"


@dataclass(frozen=True)
class MatchResult:
    """Result of matching one face.

    ``person_id`` is the recognised person, or None when the decision is "unknown".
    ``best_person_id`` is the closest person even when not accepted (None if the library is
    empty). ``similarity`` is that person's score under the matcher's fusion rule (-1.0 for
    an empty library); ``runner_up_similarity`` is the best other person's (None with fewer
    than two people).
    """

    person_id: int | None
    similarity: float
    runner_up_similarity: float | None
    decision: Decision
    best_person_id: int | None = None

    @property
    def margin(self) -> float | None:
        """Similarity lead over the runner-up person (None without a runner-up)."""
        if self.runner_up_similarity is None:
            return None
        return self.similarity - self.runner_up_similarity
