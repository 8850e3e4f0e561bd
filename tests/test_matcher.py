"""Open-set 1:N matcher: per-person best template, threshold and margin, library sync."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.library.database import FaceLibrary
from faceguard.library.match_decision import NO_MATCH_SIMILARITY, MatchResult
from faceguard.library.matcher import Matcher
from faceguard.vision.image_io import encode_jpeg

pytestmark = pytest.mark.usefixtures("both_search_paths")  # every test on both (conftest.py)

D = 16


def unit(*values: float) -> np.ndarray:
    vec = np.zeros(D, dtype=np.float32)
    vec[: len(values)] = values
    return vec / np.linalg.norm(vec)


def with_cosine(base: np.ndarray, other: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector whose cosine with ``base`` is ``cosine`` (other must be orthogonal)."""
    return (cosine * base + np.sqrt(1 - cosine**2) * other).astype(np.float32)


E = np.eye(D, dtype=np.float32)


def assert_same_results(got: list[MatchResult], expected: list[MatchResult]) -> None:
    """Equal decisions and people; similarities equal up to float32 rounding."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert (a.person_id, a.best_person_id, a.decision) == (
            b.person_id,
            b.best_person_id,
            b.decision,
        )
        assert a.similarity == pytest.approx(b.similarity, abs=1e-6)
        assert (a.runner_up_similarity is None) == (b.runner_up_similarity is None)
        if a.runner_up_similarity is not None:
            assert a.runner_up_similarity == pytest.approx(b.runner_up_similarity, abs=1e-6)


def test_empty_matcher_is_always_unknown() -> None:
    matcher = Matcher(threshold=0.3, margin=0.05)
    assert len(matcher) == 0 and matcher.dim is None
    [result] = matcher.search(unit(1.0))
    assert result == MatchResult(None, NO_MATCH_SIMILARITY, None, "unknown", None)
    assert len(matcher.search(np.ones((4, D)))) == 4
    matcher.load(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
    assert matcher.search(unit(1.0))[0].decision == "unknown"


def test_best_template_per_person_decides() -> None:
    matcher = Matcher(threshold=0.5, margin=0.05)
    # Person 7 has a poor template and a perfect one; person 3 is moderately close.
    matcher.add(7, np.stack([with_cosine(E[0], E[1], 0.2), E[0]]))
    matcher.add(3, with_cosine(E[0], E[2], 0.6))
    [result] = matcher.search(E[0] * 5.0)  # queries are normalised
    assert result.person_id == 7 and result.best_person_id == 7
    assert result.decision == "known"
    assert result.similarity == pytest.approx(1.0, abs=1e-6)
    assert result.runner_up_similarity == pytest.approx(0.6, abs=1e-6)
    assert result.margin == pytest.approx(0.4, abs=1e-6)
    assert matcher.person_ids.tolist() == [3, 7]
    assert len(matcher) == 3


def test_threshold_decides_open_set() -> None:
    matcher = Matcher(threshold=0.7, margin=0.0)
    matcher.add(1, E[0])
    below = matcher.search(with_cosine(E[0], E[1], 0.69))[0]
    above = matcher.search(with_cosine(E[0], E[1], 0.71))[0]
    assert (below.decision, below.person_id, below.best_person_id) == ("unknown", None, 1)
    assert below.runner_up_similarity is None  # only one person
    assert (above.decision, above.person_id) == ("known", 1)


def test_margin_over_best_other_person_is_required() -> None:
    matcher = Matcher(threshold=0.5, margin=0.1)
    matcher.add(1, with_cosine(E[0], E[1], 0.90))
    matcher.add(2, with_cosine(E[0], E[2], 0.85))
    close = matcher.search(E[0])[0]
    assert close.decision == "unknown" and close.best_person_id == 1
    assert close.similarity == pytest.approx(0.90, abs=1e-5)
    assert close.runner_up_similarity == pytest.approx(0.85, abs=1e-5)
    matcher.remove_person(2)
    matcher.add(2, with_cosine(E[0], E[2], 0.70))
    assert matcher.search(E[0])[0].person_id == 1
    # Two templates of the *same* person never count as a runner-up.
    matcher.add(1, with_cosine(E[0], E[3], 0.89))
    assert matcher.search(E[0])[0].decision == "known"


def test_threshold_and_margin_can_change_at_run_time() -> None:
    matcher = Matcher(threshold=0.9, margin=0.0)
    matcher.add(1, with_cosine(E[0], E[1], 0.8))
    assert matcher.search(E[0])[0].decision == "unknown"
    matcher.threshold = 0.75
    assert matcher.search(E[0])[0].decision == "known"


def brute_force(
    ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, threshold: float, margin: float
) -> tuple[int, float, float | None, str]:
    """Reference implementation with plain Python loops."""
    q = query / np.linalg.norm(query)
    best: dict[int, float] = {}
    for pid, vec in zip(ids.tolist(), vectors, strict=True):
        sim = float(np.dot(vec / np.linalg.norm(vec), q))
        best[pid] = max(best.get(pid, -2.0), sim)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    top_id, top = ranked[0]
    runner = ranked[1][1] if len(ranked) > 1 else None
    ok = top >= threshold and (runner is None or top - runner >= margin)
    return top_id, top, runner, "known" if ok else "unknown"


@pytest.mark.parametrize("n_people", [1, 2, 37])
def test_agrees_with_brute_force_reference(n_people: int) -> None:
    rng = np.random.default_rng(n_people)
    ids = rng.integers(100, 100 + n_people, size=5 * n_people + 3)
    ids[:n_people] = np.arange(100, 100 + n_people)  # everybody has a template
    rng.shuffle(ids)
    vectors = rng.standard_normal((ids.size, D)).astype(np.float32)
    queries = vectors[rng.integers(0, ids.size, 10)] + 0.4 * rng.standard_normal((10, D))
    queries = np.vstack([queries, rng.standard_normal((10, D))]).astype(np.float32)
    matcher = Matcher(threshold=0.35, margin=0.08)
    matcher.load(ids, vectors)  # unsorted input is fine

    results = matcher.search(queries)
    singles = [matcher.search(q)[0] for q in queries]

    assert_same_results(results, singles)  # batch and one-by-one agree
    decisions = set()
    for result, query in zip(results, queries, strict=True):
        top_id, top, runner, decision = brute_force(ids, vectors, query, 0.35, 0.08)
        assert result.best_person_id == top_id
        assert result.similarity == pytest.approx(top, abs=1e-5)
        if runner is None:
            assert result.runner_up_similarity is None
        else:
            assert result.runner_up_similarity == pytest.approx(runner, abs=1e-5)
        assert result.decision == decision
        assert result.person_id == (top_id if decision == "known" else None)
        decisions.add(decision)
    if n_people > 1:
        assert decisions == {"known", "unknown"}  # both branches exercised


def test_incremental_adds_match_a_full_load() -> None:
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 20, 120)
    vectors = rng.standard_normal((120, D)).astype(np.float32)
    incremental = Matcher(0.3, 0.05)
    for pid, vec in zip(ids, vectors, strict=True):
        incremental.add(int(pid), vec)
    full = Matcher(0.3, 0.05)
    full.load(ids, vectors)
    queries = rng.standard_normal((15, D)).astype(np.float32)
    assert_same_results(incremental.search(queries), full.search(queries))
    removed = incremental.remove_person(int(ids[0]))
    assert removed == int(np.count_nonzero(ids == ids[0]))
    assert int(ids[0]) not in incremental.person_ids.tolist()
    assert incremental.remove_person(-1) == 0


def test_bad_inputs_are_rejected() -> None:
    matcher = Matcher()
    matcher.add(1, unit(1.0))
    with pytest.raises(ValueError):
        matcher.search(np.ones(D + 1))
    with pytest.raises(ValueError):
        matcher.add(2, np.ones(D - 1))
    with pytest.raises(ValueError):
        matcher.search(np.full(D, np.nan))
    with pytest.raises(ValueError):
        matcher.load(np.array([1, 2]), np.ones((3, D)))
    with pytest.raises(RuntimeError):
        matcher.reload()  # not built from a library


def test_from_library_and_reload_stay_in_sync() -> None:
    lib = FaceLibrary.in_memory()
    crop = encode_jpeg(np.zeros((8, 8, 3), dtype=np.uint8))
    alice = lib.add_person("Alice")
    bob = lib.add_person("Bob")
    lib.add_template(alice.id, E[0], "m1", 0.9, crop)
    lib.add_template(bob.id, E[1], "m1", 0.9, crop)
    lib.add_template(bob.id, E[0], "other-model", 0.9, crop)  # different model: ignored
    matcher = Matcher.from_library(lib, "m1", threshold=0.5, margin=0.05)
    assert matcher.model_id == "m1" and len(matcher) == 2
    assert matcher.search(E[0])[0].person_id == alice.id

    lib.update_person(alice.id, active=False)
    matcher.remove_person(alice.id)
    assert matcher.search(E[0])[0].decision == "unknown"

    carol = lib.add_person("Carol")
    lib.add_template(carol.id, E[2], "m1", 0.9, crop)
    matcher.reload()
    assert matcher.person_ids.tolist() == [bob.id, carol.id]
    assert matcher.search(E[2])[0].person_id == carol.id
