"""The matcher's float16 storage: the scan through the shipped ONNX kernel, the float32 re-rank,
and the memory it holds, checked against a plain float32 search."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.library import half_scores as hs
from faceguard.library import template_index
from faceguard.library.matcher import Matcher


@pytest.fixture
def float16_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexes without the float32 rows small ones keep: the float16 scan and its re-rank."""
    monkeypatch.setattr(template_index, "EXACT_ROWS_LIMIT", 0)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def float32_best_two(ids: np.ndarray, matrix: np.ndarray, query: np.ndarray
                     ) -> tuple[int, float, float]:
    order = np.argsort(ids, kind="stable")
    people, starts = np.unique(ids[order], return_index=True)
    per_person = np.maximum.reduceat((matrix @ query)[order], starts)
    order = np.argsort(-per_person, kind="stable")
    return int(people[order[0]]), float(per_person[order[0]]), float(per_person[order[1]])


@pytest.mark.parametrize("templates", [300, 20_000])  # NumPy path, then the ONNX kernel
@pytest.mark.parametrize("float32_rows", [False, True])
def test_float16_search_gives_the_float32_answer(templates: int, float32_rows: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if not float32_rows:
        monkeypatch.setattr(template_index, "EXACT_ROWS_LIMIT", 0)
    rng = np.random.default_rng(templates)
    ids = rng.integers(0, templates // 3, templates).astype(np.int64)
    matrix = unit(rng.standard_normal((templates, 128), dtype=np.float32))
    matcher = Matcher(threshold=0.5, margin=0.02)
    matcher.load(ids, matrix)
    # queries near some templates (known faces) and random ones (strangers)
    near = unit(matrix[rng.integers(0, templates, 20)]
                + 0.05 * rng.standard_normal((20, 128), dtype=np.float32))
    queries = np.concatenate([near, unit(rng.standard_normal((20, 128), dtype=np.float32))])
    results = matcher.search(queries)
    for query, result in zip(queries, results, strict=True):
        person, best, runner_up = float32_best_two(ids, matrix, query)
        assert result.best_person_id == person
        assert result.similarity == pytest.approx(best, abs=1e-6)
        assert result.runner_up_similarity == pytest.approx(runner_up, abs=1e-6)
    assert sum(r.decision == "known" for r in results[:20]) == 20
    # each template: a float16 row and its float16 residual (as many bytes as float32);
    # a small index also keeps its rows in float32
    assert (matcher.index.exact is not None) == float32_rows
    extra = templates * 128 * 4 if float32_rows else 0
    assert matcher.nbytes <= templates * (128 * 4 + 8) + 16 * len(np.unique(ids)) + extra


@pytest.mark.usefixtures("float16_only")
def test_people_closer_than_float16_can_tell_apart_are_ranked_in_float32() -> None:
    rng = np.random.default_rng(5)
    base = unit(rng.standard_normal(128, dtype=np.float32))
    crowd = unit(rng.standard_normal((5_000, 128), dtype=np.float32))
    # two people whose templates differ by far less than float16's resolution
    nudge = unit(rng.standard_normal(128, dtype=np.float32)) * 2e-4
    twins = unit(np.stack([base + nudge, base - nudge]))
    query = unit(base + nudge * 3)
    truth = twins @ query
    assert 0 < truth[0] - truth[1] < hs.SCAN_ERROR  # the scan alone cannot order them
    ids = np.concatenate([np.arange(10, 10 + len(crowd)), [1, 2]]).astype(np.int64)
    for order in (slice(None), slice(None, None, -1)):
        matcher = Matcher(threshold=0.5, margin=0.0)
        matcher.load(ids[order], np.concatenate([crowd, twins])[order])
        result = matcher.search(query)[0]
        assert result.best_person_id == 1
        assert result.similarity == pytest.approx(float(truth[0]), abs=1e-6)
        assert result.runner_up_similarity == pytest.approx(float(truth[1]), abs=1e-6)


def test_scan_kernel_and_numpy_agree_and_stay_within_the_bound() -> None:
    rng = np.random.default_rng(9)
    matrix = unit(rng.standard_normal((40_000, 128), dtype=np.float32))
    queries = unit(rng.standard_normal((3, 128), dtype=np.float32))
    high, low = hs.split(matrix)
    assert hs.score_kernel() is not None  # the shipped kernel loads (SHA-256 checked)
    scanned = hs.half_scores(high, queries)
    numpy_scan = high.astype(np.float32) @ queries.T
    assert np.abs(scanned - numpy_scan).max() < 1e-6
    assert np.abs(scanned - matrix @ queries.T).max() < hs.SCAN_ERROR
    assert np.abs(hs.exact_rows(high, low) - matrix).max() < 1e-6


def test_adding_and_removing_keeps_both_parts_in_step() -> None:
    rng = np.random.default_rng(2)
    rows = unit(rng.standard_normal((6, 16), dtype=np.float32))
    matcher = Matcher(threshold=0.9, margin=0.0)
    matcher.add(3, rows[:2])
    matcher.add(1, rows[2:4])
    matcher.add(2, rows[4:])
    assert matcher.remove_person(1) == 2
    for index, person in ((0, 3), (1, 3), (4, 2), (5, 2)):
        result = matcher.search(rows[index])[0]
        assert result.person_id == person
        assert result.similarity == pytest.approx(1.0, abs=1e-6)
    assert matcher.person_similarity(2, rows[5]) == pytest.approx(1.0, abs=1e-6)
    assert matcher.search(rows[2])[0].best_person_id != 1
