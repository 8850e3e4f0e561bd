"""Open-set rules of `faceguard eval gallery --rules` (issue 14): fusion, cohort
normalisation, thresholds set on a simulated site, the rules table."""

from __future__ import annotations

import numpy as np
import pytest

from faceguard.evaluation.gallery import gallery_rules, split_gallery
from faceguard.evaluation.open_set import (
    cohort_normalise,
    person_scores,
    rule_decisions,
    threshold_for_rate,
    utkface_site_threshold,
)
from faceguard.library.matcher import Matcher

D = 24


def _people(count: int, photos: int, spread: float, seed: int
            ) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, D))
    names = [f"p{i}" for i in range(count) for _ in range(photos)]
    rows = np.repeat(centres, photos, axis=0) + rng.normal(scale=spread, size=(len(names), D))
    return names, (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_person_scores_match_the_product_matcher() -> None:
    _, rows = _people(12, 3, 0.7, seed=1)
    ids = np.repeat(np.arange(12), 3)
    probes = np.random.default_rng(2).normal(size=(9, D))
    for fusion in ("max", "max_mean"):
        scores, people = person_scores(ids, rows, probes, fusion)
        matcher = Matcher(0.0, 0.0, fusion)
        matcher.load(ids, rows)
        for row, result in zip(scores, matcher.search(probes), strict=True):
            assert people[int(np.argmax(row))] == result.best_person_id
            assert float(row.max()) == pytest.approx(result.similarity, abs=1e-5)


def test_cohort_normalisation_leaves_out_the_best_person() -> None:
    scores = np.array([[0.9, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3]], np.float32)
    z = cohort_normalise(scores)
    cohort = scores[0, 1:]
    assert z[0, 0] == pytest.approx((0.9 - cohort.mean()) / cohort.std(), rel=1e-5)
    assert np.argmax(z) == 0
    with pytest.raises(ValueError, match="at least"):
        cohort_normalise(scores[:, :3])


def test_threshold_for_rate_accepts_at_most_that_share() -> None:
    scores = np.linspace(0, 1, 1000)
    for rate in (0.0, 0.001, 0.01, 0.25):
        threshold = threshold_for_rate(scores, rate)
        assert np.mean(scores >= threshold) <= rate + 1e-12
        assert np.mean(scores >= np.nextafter(threshold, -np.inf) - 1e-3) > rate


def test_site_threshold_makes_the_cohort_rule_accept_as_many_strangers() -> None:
    _, vectors = _people(900, 1, 0.1, seed=3)
    site = utkface_site_threshold(vectors, raw_threshold=0.6, margin=0.0, people=100)
    assert site.strangers == 800 and 0 < site.stranger_rate < 0.5
    order = np.random.default_rng(7).permutation(900)
    d, _ = rule_decisions("cohort", np.arange(100), vectors[order[:100]], vectors[order[100:]])
    assert abs(float(d.accepted(site.cohort_threshold, 0.0).mean()) - site.stranger_rate) \
        <= 1.0 / 800 + 1e-9


def test_rules_table_on_a_gallery_split() -> None:
    names, vectors = _people(60, 5, 0.9, seed=5)
    has_face = np.ones(len(names), bool)
    has_face[7] = False
    split = split_gallery(names, has_face)
    assert len(split.enrolled) == 30 and len(split.template_rows) <= 60
    rows = gallery_rules(names, vectors, has_face,
                         thresholds={"max": 0.5, "max_mean": 0.5, "cohort": 3.0}, margin=0.02)
    assert [r.rule for r in rows] == ["max", "max_mean", "cohort", "max_mean@="]
    plain, fused, _, equal = rows
    assert fused.named >= plain.named  # the mean template only adds candidates' scores
    assert fused.strangers_accepted >= plain.strangers_accepted
    # at max's stranger rate: no more strangers, a threshold at least max's
    assert equal.strangers_accepted <= plain.strangers_accepted
    assert equal.threshold >= plain.threshold
    for row in rows:
        assert 0.0 <= row.named + row.wrong_person <= 1.0
        assert 0.0 <= row.strangers_accepted <= 1.0
