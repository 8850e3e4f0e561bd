"""Open-set 1:N face matching: vectorised cosine search over an in-memory template matrix.

Templates are kept as L2-normalised rows sorted by person id, so one matrix product
gives every template's cosine similarity and ``np.maximum.reduceat`` over the per-person
segments gives each person's best template. A face is recognised ("known") only when its best
person's similarity is at least ``threshold`` *and* exceeds the best other person's similarity by
at least ``margin``; otherwise it is "unknown".

Storage (:mod:`faceguard.library.half_scores`): each template is a float16 row plus the float16
rounding residual. A search scans only the float16 rows (half the bytes of a float32 scan),
then re-ranks the people near the top in float32 from both parts, so the best two people and
their similarities are float32's (to about 1e-7). Memory: 51.2 MB per 100k templates of 128
dimensions, plus 0.8 MB of ids.

Template fusion (``fusion``): with ``"max"`` (the class default) a person's score is their best
template's; with ``"max_mean"`` (what the product uses when the model's manifest entry says so;
see :mod:`faceguard.core.context`) each person also has a *mean template*, the normalised mean of
their normalised templates, and the person's score is the best of their templates and that
mean. The mean of a person's photos sits nearer their other photos than a single one does, so
it lifts genuine scores more than impostor ones; ``faceguard eval gallery --rules`` measures
what it adds. People with one template score the same under both rules.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from faceguard.library.half_scores import (
    SCAN_ERROR,
    STORAGE_DTYPE,
    exact_rows,
    half_scores,
    split,
)
from faceguard.settings import DEFAULT_MATCH_MARGIN

# Used only for a model that has no calibrated threshold (and in tests).
UNCALIBRATED_THRESHOLD = 0.5

if TYPE_CHECKING:
    from faceguard.library.database import FaceLibrary

Decision = Literal["known", "unknown"]

# Similarity reported when there is nobody to compare with (lowest possible cosine).
NO_MATCH_SIMILARITY = -1.0
# Upper bound on the similarity block computed at once (elements), to bound memory.
_BLOCK_ELEMENTS = 1 << 24
RERANK_MAX = 64  # most people re-ranked in float32 per query

Fusion = Literal["max", "max_mean"]
FUSION_RULES: tuple[Fusion, ...] = ("max", "max_mean")
DEFAULT_FUSION: Fusion = "max"


@dataclass(frozen=True)
class MatchResult:
    """Result of matching one face.

    ``person_id`` is the recognised person, or None when the decision is "unknown".
    ``best_person_id`` is the closest person even when not accepted (None if the library is
    empty). ``similarity`` is that person's best-template cosine similarity (-1.0 for an empty
    library); ``runner_up_similarity`` is the best other person's (None with fewer than two
    people).
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


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


def _as_rows(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"expected a vector (D,) or matrix (N, D), got shape {rows.shape}")
    if dim is not None and rows.shape[1] != dim:
        raise ValueError(f"expected vectors of size {dim}, got {rows.shape[1]}")
    if not np.all(np.isfinite(rows)):
        raise ValueError("vectors must contain only finite numbers")
    return rows


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
        self._ids = np.zeros(0, dtype=np.int64)  # per template, sorted
        self._matrix = np.zeros((0, 0), dtype=STORAGE_DTYPE)  # rows in the same order
        self._residual = np.zeros((0, 0), dtype=STORAGE_DTYPE)  # float16 rounding lost
        self._starts = np.zeros(0, dtype=np.intp)  # first row of each person
        self._people = np.zeros(0, dtype=np.int64)  # person id of each segment
        # float16 mean template of each person (``max_mean`` only; re-ranked in float32)
        self._means = np.zeros((0, 0), dtype=STORAGE_DTYPE)
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
    def dim(self) -> int | None:
        """Vector size, or None while empty."""
        with self._lock:
            self._flush()
            return self._matrix.shape[1] if self._matrix.shape[0] else None

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
        with self._lock:
            self._flush()
            return int(self._ids.size)

    @property
    def nbytes(self) -> int:
        """Memory held by the templates, their ids and the per-person segments."""
        with self._lock:
            self._flush()
            return int(self._matrix.nbytes + self._residual.nbytes + self._ids.nbytes
                       + self._starts.nbytes + self._people.nbytes + self._means.nbytes)

    @property
    def person_ids(self) -> np.ndarray:
        """Sorted ids of the people with at least one template."""
        with self._lock:
            self._flush()
            return self._people.copy()

    def reload(self) -> None:
        """Re-read all templates from the library this matcher was built from."""
        if self._library is None or self._model_id is None:
            raise RuntimeError("this matcher was not built with Matcher.from_library")
        person_ids, matrix = self._library.templates_matrix(self._model_id)
        self.load(person_ids, matrix)

    def load(self, person_ids: np.ndarray, matrix: np.ndarray) -> None:
        """Replace all templates: ``person_ids`` (N,) and vectors ``matrix`` (N, D)."""
        ids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            rows = np.zeros((0, 0), dtype=np.float32)
        else:
            rows = _as_rows(matrix, None)
            if rows.shape[0] != ids.size:
                raise ValueError(f"{ids.size} person ids for {rows.shape[0]} vectors")
        with self._lock:
            self._pending_ids.clear()
            self._pending_rows.clear()
            self._set(ids, *split(_normalise_rows(rows) if ids.size else rows))

    def add(self, person_id: int, vectors: np.ndarray) -> None:
        """Add one template (D,) or several (K, D) for a person."""
        with self._lock:
            current_dim = self._current_dim()
            rows = _normalise_rows(_as_rows(vectors, current_dim))
            self._pending_ids.append(np.full(rows.shape[0], int(person_id), dtype=np.int64))
            self._pending_rows.append(rows)

    def remove_person(self, person_id: int) -> int:
        """Drop every template of a person; returns how many were removed."""
        with self._lock:
            self._flush()
            keep = self._ids != int(person_id)
            removed = int(self._ids.size - np.count_nonzero(keep))
            if removed:
                self._set(self._ids[keep], self._matrix[keep], self._residual[keep])
            return removed

    def _current_dim(self) -> int | None:
        if self._pending_rows:
            return int(self._pending_rows[0].shape[1])
        return int(self._matrix.shape[1]) if self._ids.size else None

    def _set(self, ids: np.ndarray, high: np.ndarray, low: np.ndarray) -> None:
        """Install sorted contents and recompute the per-person segments (lock held)."""
        self._ids = ids
        self._matrix, self._residual = high, low
        if ids.size == 0:
            self._matrix = np.zeros((0, 0), dtype=STORAGE_DTYPE)
            self._residual = np.zeros((0, 0), dtype=STORAGE_DTYPE)
            self._starts = np.zeros(0, dtype=np.intp)
            self._people = np.zeros(0, dtype=np.int64)
            self._means = np.zeros((0, 0), dtype=STORAGE_DTYPE)
            return
        if ids.size > 1 and np.any(ids[1:] < ids[:-1]):
            order = np.argsort(ids, kind="stable")
            self._ids = ids = ids[order]
            self._matrix = np.ascontiguousarray(self._matrix[order])
            self._residual = np.ascontiguousarray(self._residual[order])
        boundary = np.empty(ids.size, dtype=bool)
        boundary[0] = True
        np.not_equal(ids[1:], ids[:-1], out=boundary[1:])
        self._starts = np.flatnonzero(boundary)
        self._people = ids[self._starts]
        if self._fusion == "max_mean":
            means = mean_templates(exact_rows(self._matrix, self._residual), self._starts)
            self._means = means.astype(STORAGE_DTYPE)

    def _flush(self) -> None:
        """Merge templates added since the last search into the sorted arrays (lock held)."""
        if not self._pending_ids:
            return
        ids = np.concatenate([self._ids, *self._pending_ids])
        pending = [split(rows) for rows in self._pending_rows]
        old = [(self._matrix, self._residual)] if self._ids.size else []
        high = np.concatenate([part[0] for part in old + pending], axis=0)
        low = np.concatenate([part[1] for part in old + pending], axis=0)
        self._pending_ids.clear()
        self._pending_rows.clear()
        self._set(ids, high, low)

    # -- matching ------------------------------------------------------------------------------

    def decide(self, similarity: float, runner_up: float | None) -> Decision:
        """Open-set rule: known iff similarity >= threshold and lead over runner-up >= margin."""
        if similarity < self.threshold:
            return "unknown"
        if runner_up is not None and similarity - runner_up < self.margin:
            return "unknown"
        return "known"

    def search(self, query: np.ndarray) -> list[MatchResult]:
        """Match one face (D,) or a batch (Q, D); one result per query row.

        Queries are L2-normalised here. An empty matcher answers "unknown" for every query.
        """
        with self._lock:
            self._flush()
            matrix, residual = self._matrix, self._residual
            starts, people, means = self._starts, self._people, self._means
        dim = matrix.shape[1] if matrix.shape[0] else None
        queries = _normalise_rows(_as_rows(query, dim))
        if dim is None:
            unknown = MatchResult(None, NO_MATCH_SIMILARITY, None, "unknown", None)
            return [unknown] * queries.shape[0]
        if self.fusion == "max_mean":
            best, best_idx, second = _fused_best_two(matrix, residual, starts, means, queries)
        else:
            best, best_idx, second = self._best_two(matrix, residual, starts, queries)
        results: list[MatchResult] = []
        for q in range(queries.shape[0]):
            sim = float(best[q])
            runner = None if second is None else float(second[q])
            candidate = int(people[best_idx[q]])
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
        with self._lock:
            self._flush()
            matrix, residual = self._matrix, self._residual
            starts, people = self._starts, self._people
        segment = np.flatnonzero(people == person_id)
        if segment.size == 0:
            return None
        lo = int(starts[segment[0]])
        hi = int(starts[segment[0] + 1]) if segment[0] + 1 < starts.size else matrix.shape[0]
        query_row = _normalise_rows(_as_rows(query, matrix.shape[1]))[0]
        rows = exact_rows(matrix[lo:hi], residual[lo:hi])
        return _fused_score(rows, query_row, self.fusion)

    @staticmethod
    def _best_two(
        matrix: np.ndarray, residual: np.ndarray, starts: np.ndarray, queries: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Per query: best person similarity, its segment index, runner-up person similarity.

        The float16 scan gives every template's score to within ``SCAN_ERROR``; every person
        with a template within twice that of the scan's runner-up person is re-ranked in
        float32, which always includes the true best two (see
        :mod:`faceguard.library.half_scores`).
        """
        n_templates, n_people, n_queries = matrix.shape[0], starts.size, queries.shape[0]
        ends = np.append(starts[1:], n_templates)
        block = max(1, _BLOCK_ELEMENTS // max(n_templates, 1))
        best = np.empty(n_queries, dtype=np.float32)
        best_idx = np.empty(n_queries, dtype=np.intp)
        second = np.empty(n_queries, dtype=np.float32) if n_people > 1 else None
        for lo in range(0, n_queries, block):
            hi = min(lo + block, n_queries)
            sims = half_scores(matrix, queries[lo:hi])  # (N, q), float16 rows, float32 sums
            for col in range(hi - lo):
                scan = np.ascontiguousarray(sims[:, col])
                near = _near_top(scan, starts, ends)
                ranked = _rescore(near, matrix, residual, starts, ends, queries[lo + col])
                best_idx[lo + col], best[lo + col] = ranked[0]
                if second is not None:
                    second[lo + col] = ranked[1][1]
        return best, best_idx, second


def _near_top(scan: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Segments (people) whose best scanned score is within ``2 * SCAN_ERROR`` of the scan's
    runner-up person, best first (at most ``RERANK_MAX``); a single person when alone."""
    top = int(np.argmax(scan))
    segment = int(np.searchsorted(starts, top, side="right")) - 1
    if starts.size == 1:
        return np.array([segment])
    lo, hi = int(starts[segment]), int(ends[segment])
    kept = scan[lo:hi].copy()
    scan[lo:hi] = -np.inf  # the best person out of the way: the runner-up person's score
    runner_up = float(np.max(scan))
    scan[lo:hi] = kept
    rows = np.flatnonzero(scan >= runner_up - 2 * SCAN_ERROR)
    rows = rows[np.argsort(-scan[rows], kind="stable")]
    segments = np.searchsorted(starts, rows, side="right") - 1
    _, first = np.unique(segments, return_index=True)
    return segments[np.sort(first)][:RERANK_MAX]


def _near_top_fused(scan: np.ndarray, mean_scan: np.ndarray, starts: np.ndarray,
                    ends: np.ndarray) -> np.ndarray:
    """:func:`_near_top` under ``"max_mean"``: a person's scanned score is the best of their
    templates' and their mean's. Found with two arg-maxes and one comparison pass over the
    templates and the means (no per-person reduction over every template)."""
    top = int(np.argmax(scan))
    mean_top = int(np.argmax(mean_scan))
    segment = int(np.searchsorted(starts, top, side="right")) - 1
    if mean_scan[mean_top] > scan[top]:
        segment = mean_top
    if starts.size == 1:
        return np.array([segment])
    lo, hi = int(starts[segment]), int(ends[segment])
    kept, kept_mean = scan[lo:hi].copy(), float(mean_scan[segment])
    scan[lo:hi], mean_scan[segment] = -np.inf, -np.inf  # the runner-up person's score
    runner_up = max(float(np.max(scan)), float(np.max(mean_scan)))
    scan[lo:hi], mean_scan[segment] = kept, kept_mean
    cutoff = runner_up - 2 * SCAN_ERROR
    rows = np.flatnonzero(scan >= cutoff)
    mean_rows = np.flatnonzero(mean_scan >= cutoff)
    segments = np.concatenate([np.searchsorted(starts, rows, side="right") - 1, mean_rows])
    scores = np.concatenate([scan[rows], mean_scan[mean_rows]])
    segments = segments[np.argsort(-scores, kind="stable")]
    _, first = np.unique(segments, return_index=True)
    return segments[np.sort(first)][:RERANK_MAX]


def _rescore(segments: np.ndarray, matrix: np.ndarray, residual: np.ndarray,
             starts: np.ndarray, ends: np.ndarray, query: np.ndarray) -> list[tuple[int, float]]:
    """People's best template scores in float32, best first: (segment, score)."""
    scored = []
    for segment in segments:
        lo, hi = int(starts[segment]), int(ends[segment])
        rows = exact_rows(matrix[lo:hi], residual[lo:hi])
        scored.append((int(segment), float(np.max(rows @ query))))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored


def _fused_score(rows: np.ndarray, query: np.ndarray, fusion: Fusion) -> float:
    """One person's float32 score: best template, or best of templates and their mean."""
    score = float(np.max(rows @ query))
    if fusion == "max_mean" and rows.shape[0] > 1:
        mean = rows.sum(axis=0)
        score = max(score, float(mean @ query) / max(float(np.linalg.norm(mean)), 1e-12))
    return score


def mean_templates(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(P, D) float32: each person's normalised mean of their (unit) template rows."""
    sums = np.add.reduceat(rows.astype(np.float32), starts, axis=0)
    return _normalise_rows(sums)


def _fused_best_two(
    matrix: np.ndarray, residual: np.ndarray, starts: np.ndarray, means: np.ndarray,
    queries: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:meth:`Matcher._best_two` under ``"max_mean"``: a person's score is the best of their
    templates and their mean template.

    Per query, the float16 scans of the templates and of the (float16) mean templates give
    each person's fused score to within ``SCAN_ERROR``; every person within twice that of the
    runner-up is re-scored in float32 (the mean recomputed from the exact rows), which
    includes the true best two.
    """
    n_templates, n_people, n_queries = matrix.shape[0], starts.size, queries.shape[0]
    ends = np.append(starts[1:], n_templates)
    block = max(1, _BLOCK_ELEMENTS // max(n_templates, 1))
    best = np.empty(n_queries, dtype=np.float32)
    best_idx = np.empty(n_queries, dtype=np.intp)
    second = np.empty(n_queries, dtype=np.float32) if n_people > 1 else None
    for lo in range(0, n_queries, block):
        hi = min(lo + block, n_queries)
        sims = half_scores(matrix, queries[lo:hi])  # (N, q)
        mean_sims = half_scores(means, queries[lo:hi])  # (P, q)
        for col in range(hi - lo):
            near = _near_top_fused(np.ascontiguousarray(sims[:, col]),
                                   np.ascontiguousarray(mean_sims[:, col]), starts, ends)
            query = queries[lo + col]
            ranked = sorted(((int(seg), _fused_score(exact_rows(
                matrix[starts[seg]:ends[seg]], residual[starts[seg]:ends[seg]]), query,
                "max_mean")) for seg in near), key=lambda item: (-item[1], item[0]))
            best_idx[lo + col], best[lo + col] = ranked[0]
            if second is not None:
                second[lo + col] = ranked[1][1]
    return best, best_idx, second
