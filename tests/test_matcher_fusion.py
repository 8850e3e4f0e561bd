"""Template fusion in the matcher (issue 14): the best of a person's templates and their
mean template, against a brute-force float64 reference, and what it changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceguard.library.matcher import Matcher
from faceguard.library.template_index import mean_templates

pytestmark = pytest.mark.usefixtures("both_search_paths")  # every test on both (conftest.py)

D = 32


def _reference(ids: np.ndarray, rows: np.ndarray, query: np.ndarray,
               fusion: str) -> list[tuple[int, float]]:
    """(person, score) best first, in float64."""
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    query = query / np.linalg.norm(query)
    scores = []
    for person in np.unique(ids):
        mine = rows[ids == person].astype(np.float64)
        score = float(np.max(mine @ query))
        if fusion == "max_mean":
            mean = mine.sum(axis=0)
            score = max(score, float(mean @ query / np.linalg.norm(mean)))
        scores.append((int(person), score))
    return sorted(scores, key=lambda item: (-item[1], item[0]))


@pytest.mark.parametrize("seed", range(6))
def test_fused_search_agrees_with_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    people = int(rng.integers(1, 40))
    ids = np.sort(rng.integers(0, people, size=int(rng.integers(people, 4 * people + 1))))
    centres = rng.normal(size=(people, D))
    rows = centres[ids] + rng.normal(scale=0.8, size=(len(ids), D))
    queries = centres[rng.integers(0, people, size=12)] + rng.normal(scale=0.8, size=(12, D))
    matcher = Matcher(threshold=0.3, margin=0.02, fusion="max_mean")
    matcher.load(ids, rows)
    for query, result in zip(queries, matcher.search(queries), strict=True):
        ranked = _reference(ids, rows, query, "max_mean")
        assert result.best_person_id == ranked[0][0]
        assert result.similarity == pytest.approx(ranked[0][1], abs=1e-5)
        if len(ranked) > 1:
            assert result.runner_up_similarity == pytest.approx(ranked[1][1], abs=1e-5)
        else:
            assert result.runner_up_similarity is None
        assert matcher.person_similarity(ranked[0][0], query) == pytest.approx(
            ranked[0][1], abs=1e-5)


def test_mean_template_lifts_a_probe_between_two_photos() -> None:
    # Two photos of a person 70 degrees apart; a new photo halfway between them scores
    # cos 35 deg = 0.82 with each, but 1.0 with their mean.
    a = np.zeros(D, np.float32)
    a[0] = 1.0
    b = np.zeros(D, np.float32)
    b[0], b[1] = np.cos(np.radians(70)), np.sin(np.radians(70))
    probe = a + b
    stranger = np.zeros(D, np.float32)
    stranger[2] = 1.0
    for fusion, expected in (("max", np.cos(np.radians(35))), ("max_mean", 1.0)):
        matcher = Matcher(threshold=0.9, margin=0.05, fusion=fusion)  # type: ignore[arg-type]
        matcher.add(1, np.stack([a, b]))
        matcher.add(2, stranger)
        [result] = matcher.search(probe)
        assert result.similarity == pytest.approx(expected, abs=1e-4)
        assert result.person_id == (1 if fusion == "max_mean" else None)


def test_one_template_people_score_the_same_under_both_rules() -> None:
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(20, D))
    ids = np.arange(20)
    plain, fused = Matcher(0.2, 0.0, "max"), Matcher(0.2, 0.0, "max_mean")
    plain.load(ids, rows)
    fused.load(ids, rows)
    queries = rng.normal(size=(8, D))
    for p, f in zip(plain.search(queries), fused.search(queries), strict=True):
        assert (p.best_person_id, p.decision) == (f.best_person_id, f.decision)
        assert p.similarity == pytest.approx(f.similarity, abs=1e-6)


def test_means_follow_adds_and_removals() -> None:
    matcher = Matcher(0.5, 0.0, "max_mean")
    first, second = np.eye(D, dtype=np.float32)[:2]
    matcher.add(5, first)
    matcher.add(5, second)
    [result] = matcher.search(first + second)
    assert result.similarity == pytest.approx(1.0, abs=1e-5)
    matcher.remove_person(5)
    assert matcher.search(first)[0].best_person_id is None
    means = mean_templates(np.stack([first, second, first]), np.array([0, 2]))
    np.testing.assert_allclose(means, np.stack([(first + second) / np.sqrt(2), first]),
                               atol=1e-6)


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="fusion rule"):
        Matcher(0.5, 0.05, fusion="average")  # type: ignore[arg-type]


def test_fused_search_through_the_float16_kernel_agrees_with_float64() -> None:
    rng = np.random.default_rng(11)
    templates, people, dim = 20_000, 6_000, 128  # large enough for the ONNX scan kernel
    ids = np.sort(rng.integers(0, people, templates))
    rows = rng.standard_normal((templates, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    queries = rows[rng.integers(0, templates, 16)] + 0.4 * rng.standard_normal((16, dim))
    matcher = Matcher(threshold=0.3, margin=0.02, fusion="max_mean")
    matcher.load(ids, rows)
    unique, starts = np.unique(ids, return_index=True)
    means = np.add.reduceat(rows.astype(np.float64), starts, axis=0)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    fused = np.maximum(np.maximum.reduceat(q @ rows.T.astype(np.float64), starts, axis=1),
                       q @ means.T)
    for row, result in zip(fused, matcher.search(queries), strict=True):
        order = np.argsort(-row, kind="stable")
        assert result.best_person_id == unique[order[0]]
        assert result.similarity == pytest.approx(row[order[0]], abs=1e-5)
        assert result.runner_up_similarity == pytest.approx(row[order[1]], abs=1e-5)


def test_the_product_matcher_uses_the_rule_its_model_was_calibrated_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceguard.core.context import AppContext
    from faceguard.vision.onnx_model import default_model_path, manifest_entry
    from tests.conftest import make_data_dir

    monkeypatch.delenv("FACEGUARD_EMBEDDER", raising=False)
    monkeypatch.delenv("FACEGUARD_EMBEDDER_SHA256", raising=False)
    entry = manifest_entry(default_model_path("lite_mobilefacenet_96.onnx")) or {}
    ctx = AppContext(make_data_dir(tmp_path, match_threshold=None))
    try:
        assert ctx.fusion == entry.get("fusion", "max")
        assert ctx.matcher.fusion == ctx.fusion
        assert ctx.operating_point.threshold == pytest.approx(float(str(entry["threshold"])))
    finally:
        ctx.close()


def test_mean_rows_computed_in_chunks_match_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceguard.library import template_index

    rng = np.random.default_rng(8)
    ids = np.sort(rng.integers(0, 50, 400))
    rows = rng.normal(size=(400, D)).astype(np.float32)
    whole = Matcher(0.3, 0.0, "max_mean")
    whole.load(ids, rows)
    monkeypatch.setattr(template_index, "_MEAN_CHUNK_ROWS", 7)  # smaller than some people
    chunked = Matcher(0.3, 0.0, "max_mean")
    chunked.load(ids, rows)
    np.testing.assert_array_equal(chunked.index.rows, whole.index.rows)
    assert chunked.index.rows.shape[0] == 400 + len(np.unique(ids))  # templates, then means


def test_fused_search_after_removals_and_adds_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(13)
    ids = rng.integers(0, 30, 150)
    rows = rng.normal(size=(150, D))
    matcher = Matcher(0.3, 0.0, "max_mean")
    matcher.load(ids, rows)
    for person in (3, 17, 29):
        assert matcher.remove_person(person) == np.count_nonzero(ids == person)
    keep = ~np.isin(ids, (3, 17, 29))
    _assert_agrees(matcher, ids[keep], rows[keep], rng.normal(size=(10, D)))
    extra = rng.normal(size=(5, D))
    matcher.add(3, extra[:2])  # back, with new templates
    matcher.add(40, extra[2:])  # someone new, after everyone
    _assert_agrees(matcher, np.concatenate([ids[keep], [3, 3, 40, 40, 40]]),
                   np.concatenate([rows[keep], extra]), rng.normal(size=(10, D)))


def _assert_agrees(matcher: Matcher, ids: np.ndarray, rows: np.ndarray,
                   queries: np.ndarray) -> None:
    for query, result in zip(queries, matcher.search(queries), strict=True):
        ranked = _reference(ids, rows, query, "max_mean")
        assert result.best_person_id == ranked[0][0]
        assert result.similarity == pytest.approx(ranked[0][1], abs=1e-5)
        assert result.runner_up_similarity == pytest.approx(ranked[1][1], abs=1e-5)
