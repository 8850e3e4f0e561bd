"""The matcher's searchable templates: one immutable, person-sorted float16 snapshot.

Templates are L2-normalised rows sorted by person id, so each person's templates form one
contiguous segment. Each is stored as a float16 row plus its float16 rounding residual
(:mod:`faceguard.library.half_scores`). Under the ``"max_mean"`` fusion rule every person
also has a *mean template*, the normalised mean of their templates, stored as an extra
float16 row after all the templates: one scan of :attr:`TemplateIndex.rows` scores every
template and every mean at once.

Template fusion: with ``"max"`` a person's score is their best template's; with
``"max_mean"`` (what the product uses when the model's manifest entry says so; see
:mod:`faceguard.core.context`) it is the best of their templates and their mean. The mean of
a person's photos sits nearer their other photos than a single one does, so it lifts genuine
scores more than impostor ones; ``faceguard eval gallery --rules`` measures what it adds.
People with one template score the same under both rules.

Memory per 100k templates of 128 dimensions: 51.2 MB of rows and residuals plus 0.8 MB of
ids; ``"max_mean"`` adds 256 bytes of mean row per person (6.4 MB at 4 templates a person).

Small indexes (at most :data:`EXACT_ROWS_LIMIT` rows, templates and means together) also keep
their rows in float32 (:attr:`TemplateIndex.exact`, 512 bytes a row at 128 dimensions, at
most 16 MiB): there a search is one float32 product, faster than the float16 scan and its
re-rank, because a matrix that small is read from cache, not memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceguard.library.half_scores import STORAGE_DTYPE, exact_rows, split

Fusion = Literal["max", "max_mean"]
FUSION_RULES: tuple[Fusion, ...] = ("max", "max_mean")
DEFAULT_FUSION: Fusion = "max"

_MEAN_CHUNK_ROWS = 65_536  # templates widened to float32 at once while computing means
EXACT_ROWS_LIMIT = 32_768  # indexes with at most this many rows also keep them in float32


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Float32 rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


def as_rows(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """A vector (D,) or matrix (N, D) as finite float32 rows of size ``dim`` (when given)."""
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


def mean_templates(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(P, D) float32: each person's normalised mean of their (unit) template rows."""
    sums = np.add.reduceat(rows.astype(np.float32), starts, axis=0)
    return normalise_rows(sums)


def fused_score(rows: np.ndarray, query: np.ndarray, fusion: Fusion) -> float:
    """One person's float32 score from their exact rows: best template, or under
    ``"max_mean"`` the best of their templates and their (recomputed) mean."""
    score = float(np.max(rows @ query))
    if fusion == "max_mean" and rows.shape[0] > 1:
        mean = rows.sum(axis=0)
        score = max(score, float(mean @ query) / max(float(np.linalg.norm(mean)), 1e-12))
    return score


@dataclass(frozen=True)
class TemplateIndex:
    """Person-sorted float16 templates (and mean rows) with their per-person segments.

    Never changed in place: :meth:`merged` and :meth:`without` return a new index, so a
    search may keep using the one it started with while templates are added.
    """

    fusion: Fusion
    ids: np.ndarray  # (N,) int64: the person of each template, sorted
    rows: np.ndarray  # (N + M, D) float16: the templates, then M = P mean rows (max_mean)
    residual: np.ndarray  # (N, D) float16: what rounding each template to float16 lost
    starts: np.ndarray  # (P,) intp: first template row of each person
    people: np.ndarray  # (P,) int64: the person of each segment
    exact: np.ndarray | None = None  # (N + M, D) float32 rows, small indexes only

    @classmethod
    def empty(cls, fusion: Fusion) -> TemplateIndex:
        """An index without templates."""
        none = np.zeros((0, 0), dtype=STORAGE_DTYPE)
        return cls(fusion, np.zeros(0, dtype=np.int64), none, none,
                   np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64))

    @classmethod
    def build(cls, ids: np.ndarray, high: np.ndarray, low: np.ndarray, fusion: Fusion,
              means: np.ndarray | None = None) -> TemplateIndex:
        """An index over float16 rows ``high`` + ``low`` of persons ``ids`` (any order).

        ``means``: the float16 mean rows when the caller already has them (sorted ids)."""
        if ids.size == 0:
            return cls.empty(fusion)
        if ids.size > 1 and np.any(ids[1:] < ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, high, low, means = ids[order], high[order], low[order], None
        boundary = np.empty(ids.size, dtype=bool)
        boundary[0] = True
        np.not_equal(ids[1:], ids[:-1], out=boundary[1:])
        starts = np.flatnonzero(boundary)
        rows = np.ascontiguousarray(high)
        if fusion == "max_mean":
            rows = np.concatenate(
                [high, _mean_rows(high, low, starts) if means is None else means])
        exact = None
        if rows.shape[0] <= EXACT_ROWS_LIMIT:
            exact = exact_rows(high, low)
            if fusion == "max_mean":
                exact = np.concatenate([exact, mean_templates(exact, starts)])
        return cls(fusion, ids, rows, np.ascontiguousarray(low), starts, ids[starts], exact)

    # -- what it holds ------------------------------------------------------------------------

    @property
    def templates(self) -> int:
        """Number of templates (N)."""
        return int(self.ids.size)

    @property
    def dim(self) -> int | None:
        """Vector size, or None while empty."""
        return int(self.rows.shape[1]) if self.ids.size else None

    @property
    def nbytes(self) -> int:
        """Memory held by the rows, residuals, ids and per-person segments."""
        exact = self.exact.nbytes if self.exact is not None else 0
        return int(self.rows.nbytes + self.residual.nbytes + self.ids.nbytes
                   + self.starts.nbytes + self.people.nbytes + exact)

    def segment_of_person(self, person_id: int) -> int | None:
        """The segment of a person, None when they have no template here."""
        segment = int(np.searchsorted(self.people, person_id))
        found = segment < self.people.size and int(self.people[segment]) == person_id
        return segment if found else None

    def segments_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """The person segment of each scanned row (a template row or a mean row)."""
        segments = np.searchsorted(self.starts, rows, side="right") - 1
        means = rows >= self.templates
        segments[means] = rows[means] - self.templates
        return segments

    def templates_of(self, segment: int) -> slice:
        """A person's template rows."""
        end = self.starts[segment + 1] if segment + 1 < self.starts.size else self.templates
        return slice(int(self.starts[segment]), int(end))

    def scan_rows_of(self, segment: int) -> tuple[slice, int | None]:
        """A person's rows in :attr:`rows`: their templates, and their mean row (or None)."""
        mean_row = self.templates + segment if self.fusion == "max_mean" else None
        return self.templates_of(segment), mean_row

    def exact_templates(self, segment: int) -> np.ndarray:
        """A person's templates in float32 (from the float16 rows and residuals)."""
        rows = self.templates_of(segment)
        return exact_rows(self.rows[rows], self.residual[rows])

    def person_score(self, segment: int, query: np.ndarray) -> float:
        """A person's float32 score for a unit query under the fusion rule."""
        return fused_score(self.exact_templates(segment), query, self.fusion)

    # -- new indexes --------------------------------------------------------------------------

    def merged(self, ids: np.ndarray, rows: np.ndarray) -> TemplateIndex:
        """This index plus unit float32 ``rows`` of persons ``ids``."""
        high, low = split(rows)
        if not self.ids.size:
            return TemplateIndex.build(ids, high, low, self.fusion)
        return TemplateIndex.build(np.concatenate([self.ids, ids]),
                                   np.concatenate([self.rows[:self.templates], high]),
                                   np.concatenate([self.residual, low]), self.fusion)

    def without(self, person_id: int) -> tuple[TemplateIndex, int]:
        """This index less one person's templates, and how many were removed."""
        segment = self.segment_of_person(person_id)
        if segment is None:
            return self, 0
        keep = self.ids != person_id
        means = None
        if self.fusion == "max_mean":
            kept_people = np.arange(self.people.size) != segment
            means = self.rows[self.templates:][kept_people]
        index = TemplateIndex.build(self.ids[keep], self.rows[:self.templates][keep],
                                    self.residual[keep], self.fusion, means)
        return index, self.templates - index.templates


def _mean_rows(high: np.ndarray, low: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(P, D) float16 mean templates of sorted rows, widened a bounded chunk at a time."""
    bounds = np.append(starts, high.shape[0])
    means = np.empty((starts.size, high.shape[1]), dtype=STORAGE_DTYPE)
    first = 0
    while first < bounds.size - 1:
        # whole people only, at least one, about _MEAN_CHUNK_ROWS templates
        last = int(np.searchsorted(bounds, bounds[first] + _MEAN_CHUNK_ROWS, side="right")) - 1
        last = min(max(last, first + 1), bounds.size - 1)
        lo, hi = int(bounds[first]), int(bounds[last])
        rows = exact_rows(high[lo:hi], low[lo:hi])
        means[first:last] = mean_templates(rows, bounds[first:last] - lo)
        first = last
    return means
