"""The gallery protocol by visits: several photos of one person fused before one decision.

The kiosk does not decide on one frame: it fuses the embeddings of a visit's frames (mean of
unit vectors, renormalised: :meth:`faceguard.kiosk.tracking.Track.fuse`) and matches the
fused vector. This protocol does the same with LFW photos on the gallery split of
:mod:`faceguard.evaluation.gallery`: each enrolled person's probe photos (with a face), and
each stranger's photos, are taken ``photos_per_visit`` at a time in file order as one visit;
a person's photos left over are not used. Photos of one LFW person come from different days,
so they differ more than the frames of one visit at a door: the gain seen here is an upper
bound of what fusing frames adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceguard.evaluation.gallery import DEFAULT_SEED, split_gallery
from faceguard.library.matcher import Matcher
from faceguard.library.template_index import DEFAULT_FUSION, Fusion


@dataclass(frozen=True)
class VisitReport:
    """Counts of one visit-protocol run."""

    photos_per_visit: int
    threshold: float
    enrolled_visits: int
    named: int
    as_other: int
    stranger_visits: int
    strangers_accepted: int

    def to_json(self) -> dict[str, Any]:
        """Counts and rates as a JSON object (rates None where nothing was counted)."""
        def rate(count: int, total: int) -> float | None:
            return round(count / total, 5) if total else None

        return {"photos_per_visit": self.photos_per_visit, "threshold": self.threshold,
                "enrolled_visits": self.enrolled_visits, "stranger_visits": self.stranger_visits,
                "accept_rate": rate(self.named, self.enrolled_visits),
                "misidentification_rate": rate(self.as_other, self.enrolled_visits),
                "stranger_false_accept_rate": rate(self.strangers_accepted,
                                                   self.stranger_visits)}


def fused_visits(vectors: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """One unit vector per group of rows: the renormalised mean of the rows' unit vectors."""
    if not groups:
        return np.zeros((0, vectors.shape[1]), np.float32)
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    fused = np.stack([units[list(rows)].sum(axis=0) for rows in groups])
    return (fused / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12)
            ).astype(np.float32)


def _chunks(rows_by_key: dict[Any, list[int]], size: int) -> list[tuple[Any, list[int]]]:
    return [(key, rows[start:start + size]) for key, rows in rows_by_key.items()
            for start in range(0, len(rows) - size + 1, size)]


def evaluate_visits(identities: Sequence[str], vectors: np.ndarray, has_face: np.ndarray, *,
                    threshold: float, margin: float, photos_per_visit: int = 2,
                    seed: int = DEFAULT_SEED, fusion: Fusion = DEFAULT_FUSION) -> VisitReport:
    """The gallery split, decided per visit of ``photos_per_visit`` fused photos."""
    if photos_per_visit < 1:
        raise ValueError("a visit has at least one photo")
    faces = np.asarray(has_face, dtype=bool)
    split = split_gallery(identities, faces, seed)
    matcher = Matcher(threshold, margin, fusion)
    if split.template_rows:
        matcher.load(np.array(split.template_ids, np.int64), vectors[split.template_rows])
    by_person: dict[int, list[int]] = {}
    for row, person in split.probes:
        if faces[row]:
            by_person.setdefault(person, []).append(row)
    by_stranger: dict[str, list[int]] = {}
    for row in split.strangers:
        if faces[row]:
            by_stranger.setdefault(identities[row], []).append(row)
    enrolled = _chunks(by_person, photos_per_visit)
    strangers = _chunks(by_stranger, photos_per_visit)
    named = other = accepted = 0
    if enrolled:
        results = matcher.search(fused_visits(vectors, [rows for _, rows in enrolled]))
        for (person, _), result in zip(enrolled, results, strict=True):
            named += result.person_id == person
            other += result.person_id is not None and result.person_id != person
    if strangers:
        results = matcher.search(fused_visits(vectors, [rows for _, rows in strangers]))
        accepted = sum(result.person_id is not None for result in results)
    return VisitReport(photos_per_visit, float(threshold), len(enrolled), int(named),
                       int(other), len(strangers), int(accepted))
