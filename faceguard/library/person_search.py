"""1:N search over a :class:`~faceguard.library.template_index.TemplateIndex`: the best two
people for each query, with float32 scores.

One float16 scan (:func:`faceguard.library.half_scores.half_scores`) scores every row of the
index: every template and, under ``"max_mean"``, every mean template, so it gives each
person's fused score to within ``SCAN_ERROR``. Every person with a row within twice that of
the scan's runner-up person is then re-scored in float32 from the exact rows (the mean
recomputed from them), which always includes the true best two people.

Small indexes keep float32 rows (:attr:`TemplateIndex.exact`): there every row is scored in
float32 at once and each person's fused score is the maximum over their rows, with no re-rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceguard.library.half_scores import SCAN_ERROR, half_scores
from faceguard.library.template_index import TemplateIndex

# Upper bound on the score block computed at once (elements), to bound memory.
_BLOCK_ELEMENTS = 1 << 24
RERANK_MAX = 64  # most people re-ranked in float32 per query


@dataclass(frozen=True)
class BestTwo:
    """Per query: the best person's segment and score, and the runner-up person's score
    (None with fewer than two people)."""

    segment: np.ndarray  # (Q,) intp
    score: np.ndarray  # (Q,) float32
    runner_up: np.ndarray | None  # (Q,) float32


def best_two_people(index: TemplateIndex, queries: np.ndarray) -> BestTwo:
    """The best two people of a non-empty index for unit float32 ``queries`` (Q, D)."""
    if index.exact is not None:
        return _best_two_exact(index, index.exact, queries)
    n_queries = queries.shape[0]
    block = max(1, _BLOCK_ELEMENTS // max(index.rows.shape[0], 1))
    segment = np.empty(n_queries, dtype=np.intp)
    score = np.empty(n_queries, dtype=np.float32)
    runner_up = np.empty(n_queries, dtype=np.float32) if index.people.size > 1 else None
    for lo in range(0, n_queries, block):
        hi = min(lo + block, n_queries)
        scores = half_scores(index.rows, queries[lo:hi])  # (N + M, q), float32
        for col in range(hi - lo):
            query = queries[lo + col]
            ranked = sorted(((int(seg), index.person_score(int(seg), query))
                             for seg in _near_top(np.ascontiguousarray(scores[:, col]), index)),
                            key=lambda item: (-item[1], item[0]))
            segment[lo + col], score[lo + col] = ranked[0]
            if runner_up is not None:
                runner_up[lo + col] = ranked[1][1]
    return BestTwo(segment, score, runner_up)


def _best_two_exact(index: TemplateIndex, exact: np.ndarray, queries: np.ndarray) -> BestTwo:
    """:func:`best_two_people` from the float32 rows: one product, a maximum per person."""
    scores = exact @ queries.T  # (N + M, Q)
    per_person = np.maximum.reduceat(scores[:index.templates], index.starts, axis=0)  # (P, Q)
    if index.fusion == "max_mean":
        np.maximum(per_person, scores[index.templates:], out=per_person)
    columns = np.arange(queries.shape[0])
    segment = np.argmax(per_person, axis=0)  # the first best: the lowest segment on a tie
    score = per_person[segment, columns].astype(np.float32)
    runner_up = None
    if index.people.size > 1:
        per_person[segment, columns] = -np.inf
        runner_up = per_person.max(axis=0).astype(np.float32)
    return BestTwo(segment.astype(np.intp), score, runner_up)


def _near_top(scan: np.ndarray, index: TemplateIndex) -> np.ndarray:
    """People (segments) with a scanned row within ``2 * SCAN_ERROR`` of the scan's runner-up
    person, best first (at most ``RERANK_MAX``); the one person when alone.

    Three passes over the scan (arg-max, max with the best person set aside, threshold);
    ``scan`` is changed during the call and restored."""
    top = int(np.argmax(scan))
    segment = int(index.segments_of_rows(np.array([top]))[0])
    if index.people.size == 1:
        return np.array([segment])
    templates, mean_row = index.scan_rows_of(segment)
    kept = scan[templates].copy()
    kept_mean = scan[mean_row] if mean_row is not None else None
    scan[templates] = -np.inf  # the best person out of the way: the runner-up person's score
    if mean_row is not None:
        scan[mean_row] = -np.inf
    runner_up = float(np.max(scan))
    scan[templates] = kept
    if mean_row is not None:
        scan[mean_row] = kept_mean
    rows = np.flatnonzero(scan >= runner_up - 2 * SCAN_ERROR)
    rows = rows[np.argsort(-scan[rows], kind="stable")]
    segments = index.segments_of_rows(rows)
    _, first = np.unique(segments, return_index=True)
    return segments[np.sort(first)][:RERANK_MAX]
