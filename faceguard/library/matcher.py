"""Open-set 1:N face matching: the thread-safe matcher the product keeps in step with the
face library.

What it holds is a :class:`~faceguard.library.template_index.TemplateIndex` (person-sorted
float16 templates, and mean templates under ``"max_mean"``); a search
(:mod:`faceguard.library.person_search`) scans it once in float16 and re-ranks the people
near the top in float32, so the best two people and their similarities are float32's (to
about 1e-7). The decision on them is :func:`faceguard.library.match_decision.decide`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from faceguard.library.match_decision import (
    NO_MATCH_SIMILARITY,
    UNCALIBRATED_THRESHOLD,
    Decision,
    MatchResult,
    decide,
)
from faceguard.library.person_search import best_two_people
from faceguard.library.template_index import (
    DEFAULT_FUSION,
    FUSION_RULES,
    Fusion,
    TemplateIndex,
    as_rows,
    normalise_rows,
)
from faceguard.settings import DEFAULT_MATCH_MARGIN

if TYPE_CHECKING:
    from faceguard.library.database import FaceLibrary


class Matcher:
    """In-memory 1:N matcher. Thread-safe: searches may run while templates are added.

    Keep it in sync with the library: call :meth:`add` after storing a template,
    :meth:`remove_person` after removing or deactivating a person, or :meth:`reload`.
    """

    def __init__(
        self,
        threshold: float = UNCALIBRATED_THRESHOLD,
        margin: float = DEFAULT_MATCH_MARGIN,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        """An empty matcher with the given operating point and template-fusion rule."""
        if fusion not in FUSION_RULES:
            raise ValueError(f"unknown fusion rule {fusion!r}; use one of {FUSION_RULES}")
        self.threshold = float(threshold)
        self.margin = float(margin)
        self._fusion: Fusion = fusion
        self._lock = threading.Lock()
        self._library: FaceLibrary | None = None
        self._model_id: str | None = None
        self._index = TemplateIndex.empty(fusion)
        self._pending_ids: list[np.ndarray] = []
        self._pending_rows: list[np.ndarray] = []

    @classmethod
    def from_library(
        cls,
        library: FaceLibrary,
        model_id: str,
        threshold: float = UNCALIBRATED_THRESHOLD,
        margin: float = DEFAULT_MATCH_MARGIN,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> Matcher:
        """A matcher over the library's active people's templates made by ``model_id``."""
        matcher = cls(threshold, margin, fusion)
        matcher._library = library
        matcher._model_id = model_id
        matcher.reload()
        return matcher

    # -- contents ------------------------------------------------------------------------------

    @property
    def index(self) -> TemplateIndex:
        """What a search would scan now (an immutable snapshot)."""
        with self._lock:
            self._flush()
            return self._index

    @property
    def dim(self) -> int | None:
        """Vector size, or None while empty."""
        return self.index.dim

    @property
    def fusion(self) -> Fusion:
        """The template-fusion rule (fixed when the matcher is made)."""
        return self._fusion

    @property
    def model_id(self) -> str | None:
        """Model id of the templates, when loaded from a library."""
        return self._model_id

    def __len__(self) -> int:
        """Number of templates."""
        return self.index.templates

    @property
    def nbytes(self) -> int:
        """Memory held by the templates, their ids and the per-person segments."""
        return self.index.nbytes

    @property
    def person_ids(self) -> np.ndarray:
        """Sorted ids of the people with at least one template."""
        return self.index.people.copy()

    def reload(self) -> None:
        """Re-read all templates from the library this matcher was built from."""
        if self._library is None or self._model_id is None:
            raise RuntimeError("this matcher was not built with Matcher.from_library")
        person_ids, matrix = self._library.templates_matrix(self._model_id)
        self.load(person_ids, matrix)

    def load(self, person_ids: np.ndarray, matrix: np.ndarray) -> None:
        """Replace all templates: ``person_ids`` (N,) and vectors ``matrix`` (N, D)."""
        ids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        index = TemplateIndex.empty(self._fusion)
        if ids.size:
            rows = as_rows(matrix, None)
            if rows.shape[0] != ids.size:
                raise ValueError(f"{ids.size} person ids for {rows.shape[0]} vectors")
            index = index.merged(ids, normalise_rows(rows))
        with self._lock:
            self._pending_ids.clear()
            self._pending_rows.clear()
            self._index = index

    def add(self, person_id: int, vectors: np.ndarray) -> None:
        """Add one template (D,) or several (K, D) for a person."""
        with self._lock:
            current_dim = self._current_dim()
            rows = normalise_rows(as_rows(vectors, current_dim))
            self._pending_ids.append(np.full(rows.shape[0], int(person_id), dtype=np.int64))
            self._pending_rows.append(rows)

    def remove_person(self, person_id: int) -> int:
        """Drop every template of a person; returns how many were removed."""
        with self._lock:
            self._flush()
            self._index, removed = self._index.without(int(person_id))
            return removed

    def _current_dim(self) -> int | None:
        if self._pending_rows:
            return int(self._pending_rows[0].shape[1])
        return self._index.dim

    def _flush(self) -> None:
        """Merge templates added since the last search into the index (lock held)."""
        if not self._pending_ids:
            return
        ids, rows = np.concatenate(self._pending_ids), np.concatenate(self._pending_rows)
        self._pending_ids.clear()
        self._pending_rows.clear()
        self._index = self._index.merged(ids, rows)

    # -- matching ------------------------------------------------------------------------------

    def decide(self, similarity: float, runner_up: float | None) -> Decision:
        """Open-set rule: known iff similarity >= threshold and lead over runner-up >= margin."""
        return decide(similarity, runner_up, self.threshold, self.margin)

    def search(self, query: np.ndarray) -> list[MatchResult]:
        """Match one face (D,) or a batch (Q, D); one result per query row.

        Queries are L2-normalised here. An empty matcher answers "unknown" for every query.
        """
        index = self.index
        queries = normalise_rows(as_rows(query, index.dim))
        if index.dim is None:
            unknown = MatchResult(None, NO_MATCH_SIMILARITY, None, "unknown", None)
            return [unknown] * queries.shape[0]
        found = best_two_people(index, queries)
        results: list[MatchResult] = []
        for q in range(queries.shape[0]):
            sim = float(found.score[q])
            runner = None if found.runner_up is None else float(found.runner_up[q])
            candidate = int(index.people[found.segment[q]])
            decision = self.decide(sim, runner)
            results.append(
                MatchResult(
                    person_id=candidate if decision == "known" else None,
                    similarity=sim,
                    runner_up_similarity=runner,
                    decision=decision,
                    best_person_id=candidate,
                )
            )
        return results

    def person_similarity(self, person_id: int, query: np.ndarray) -> float | None:
        """One face's (D,) score for one person under the fusion rule (None: none held)."""
        index = self.index
        segment = index.segment_of_person(int(person_id))
        if segment is None:
            return None
        query_row = normalise_rows(as_rows(query, index.dim))[0]
        return index.person_score(segment, query_row)
