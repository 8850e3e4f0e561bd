"""Open-set decision rules compared on one gallery, each at a threshold set on UTKFace.

Rules (a probe is accepted as its best person when that person's score reaches the rule's
threshold and the raw score leads the runner-up person's by the margin):

* ``max``: a person's score is their best template's cosine (the product before issue 14);
* ``max_mean``: the best of their templates and their mean template
  (:data:`faceguard.library.matcher.FUSION_RULES`);
* ``cohort``: ``max_mean`` scores z-normalised per probe by the site's own enrolled cohort
  (the mean and standard deviation of the probe's scores to every enrolled person but the
  best): adaptive score normalisation, so that one threshold would mean one false-accept
  rate on every site.

Thresholds never come from LFW. ``max`` and ``max_mean`` use the model's calibrated threshold
(UTKFace impostor pairs, :mod:`faceguard.training.calibrate`); the cohort rule's threshold is
the z that accepts as many strangers as the raw threshold does on a simulated UTKFace site
(:func:`utkface_site_threshold`): the two rules are then compared at one UTKFace false-accept
rate, and the gallery shows which names more people and which keeps that rate on LFW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError, ImageError
from faceguard.evaluation.lfw_embeddings import EmbedFn, ProgressFn, no_progress
from faceguard.library.matcher import Matcher

RULES = ("max", "max_mean", "cohort")
SITE_PEOPLE = 220  # as many as the LFW gallery enrols
MIN_COHORT = 5


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def person_scores(template_people: np.ndarray, templates: np.ndarray, probes: np.ndarray,
                  fusion: str) -> tuple[np.ndarray, np.ndarray]:
    """(Q, P) float32 person scores under ``fusion`` and the sorted person ids (P,)."""
    ids = np.asarray(template_people, np.int64)
    order = np.argsort(ids, kind="stable")
    ids, rows = ids[order], _unit(templates)[order]
    people, starts = np.unique(ids, return_index=True)
    sims = _unit(probes) @ rows.T  # (Q, N)
    scores = np.maximum.reduceat(sims, starts, axis=1)
    if fusion in ("max_mean", "cohort"):
        means = _unit(np.add.reduceat(rows, starts, axis=0))
        scores = np.maximum(scores, _unit(probes) @ means.T)
    return scores.astype(np.float32), people


def cohort_normalise(scores: np.ndarray) -> np.ndarray:
    """Each row z-normalised by the mean and deviation of its entries other than its best."""
    q, p = scores.shape
    if p < MIN_COHORT + 1:
        raise ValueError(f"cohort normalisation needs at least {MIN_COHORT + 1} people")
    best = np.argmax(scores, axis=1)
    mask = np.ones_like(scores, dtype=bool)
    mask[np.arange(q), best] = False
    cohort = scores[mask].reshape(q, p - 1)
    mean = cohort.mean(axis=1, keepdims=True)
    std = np.maximum(cohort.std(axis=1, keepdims=True), 1e-6)
    return ((scores - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class Decisions:
    """Best person (column), its rule score and the raw lead over the runner-up, per probe."""

    best: np.ndarray
    score: np.ndarray
    lead: np.ndarray

    def accepted(self, threshold: float, margin: float) -> np.ndarray:
        """Per probe: accepted as its best person at this operating point."""
        return (self.score >= threshold) & (self.lead >= margin)


def decisions(raw: np.ndarray, rule_scores: np.ndarray) -> Decisions:
    """Decisions of one rule from raw fused scores and the rule's (maybe normalised) ones."""
    best = np.argmax(raw, axis=1)
    rows = np.arange(raw.shape[0])
    if raw.shape[1] > 1:
        top2 = np.partition(raw, raw.shape[1] - 2, axis=1)[:, -2:]
        lead = top2[:, 1] - top2[:, 0]
    else:
        lead = np.full(raw.shape[0], np.inf, np.float32)
    return Decisions(best, rule_scores[rows, best], lead)


def rule_decisions(rule: str, template_people: np.ndarray, templates: np.ndarray,
                   probes: np.ndarray) -> tuple[Decisions, np.ndarray]:
    """Decisions of ``rule`` for each probe, and the person ids of the columns."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; use one of {RULES}")
    raw, people = person_scores(template_people, templates, probes, rule)
    scored = cohort_normalise(raw) if rule == "cohort" else raw
    return decisions(raw, scored), people


def threshold_for_rate(scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that accepts at most ``rate`` of these (accept-eligible) scores."""
    ordered = np.sort(np.asarray(scores, np.float32))[::-1]
    allowed = int(np.floor(rate * len(ordered) + 1e-9))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # the next float32 above the (allowed+1)-th highest score (scores are float32, and a
    # Python float compared with them is rounded to float32)
    return float(np.nextafter(ordered[allowed], np.float32(np.inf)))


@dataclass(frozen=True)
class SiteCalibration:
    """What a raw threshold means on a simulated UTKFace site, and the cohort rule's twin."""

    people: int
    strangers: int
    raw_threshold: float
    stranger_rate: float  # strangers accepted at the raw threshold (max_mean rule)
    cohort_threshold: float  # z accepting the same share of strangers


def utkface_site_threshold(vectors: np.ndarray, raw_threshold: float, margin: float,
                           people: int = SITE_PEOPLE, seed: int = 7) -> SiteCalibration:
    """Simulate a site on UTKFace (no identity labels: one photo per enrolled "person", the
    other faces strangers) and find the cohort threshold with the raw threshold's stranger
    accept rate (at least one accepted stranger is assumed, for a finite threshold)."""
    count = len(vectors)
    if count < people + 100:
        raise ValueError(f"need at least {people + 100} UTKFace faces, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    enrolled, strangers = order[:people], order[people:]
    ids = np.arange(people, dtype=np.int64)
    raw_decisions, _ = rule_decisions("max_mean", ids, vectors[enrolled], vectors[strangers])
    rate = float(raw_decisions.accepted(raw_threshold, margin).mean())
    cohort, _ = rule_decisions("cohort", ids, vectors[enrolled], vectors[strangers])
    eligible = cohort.score[cohort.lead >= margin]
    allowed = max(rate, 1.0 / len(strangers)) * len(strangers) / max(len(eligible), 1)
    return SiteCalibration(people, len(strangers), float(raw_threshold), rate,
                           threshold_for_rate(eligible, allowed))


@dataclass(frozen=True)
class RuleRow:
    """One row of the rules table."""

    rule: str
    threshold: float
    named: float  # enrolled probes accepted as the right person
    wrong_person: float  # enrolled probes accepted as someone else
    strangers_accepted: float


def gallery_rules_table(template_people: np.ndarray, templates: np.ndarray,
                        probe_people: np.ndarray, probes: np.ndarray, strangers: np.ndarray,
                        thresholds: dict[str, float], margin: float,
                        enrolled_probes_total: int | None = None) -> list[RuleRow]:
    """Named / wrongly named / strangers accepted for each rule at its threshold.

    ``max`` and ``max_mean`` go through the product's :class:`Matcher`; the cohort rule
    through :func:`rule_decisions`. Probes without a face count as not named when
    ``enrolled_probes_total`` is larger than ``len(probes)``.
    """
    total = enrolled_probes_total or len(probes)
    rows: list[RuleRow] = []
    for rule, threshold in thresholds.items():
        if rule in ("max", "max_mean"):
            matcher = Matcher(threshold, margin, fusion=rule)  # type: ignore[arg-type]
            matcher.load(template_people, templates)
            found = [r.person_id for r in matcher.search(probes)]
            named = sum(f == p for f, p in zip(found, probe_people, strict=True))
            wrong = sum(f is not None and f != p for f, p in zip(found, probe_people,
                                                                 strict=True))
            accepted = sum(r.person_id is not None for r in matcher.search(strangers))
        else:
            probe_d, people = rule_decisions(rule, template_people, templates, probes)
            ok = probe_d.accepted(threshold, margin)
            chosen = people[probe_d.best]
            named = int(np.sum(ok & (chosen == probe_people)))
            wrong = int(np.sum(ok & (chosen != probe_people)))
            stranger_d, _ = rule_decisions(rule, template_people, templates, strangers)
            accepted = int(stranger_d.accepted(threshold, margin).sum())
        rows.append(RuleRow(rule, float(threshold), named / max(total, 1),
                            wrong / max(total, 1), accepted / max(len(strangers), 1)))
    if "max" in thresholds and len(strangers):
        reference = next(row for row in rows if row.rule == "max")
        rows.append(equal_strangers_row(template_people, templates, probe_people, probes,
                                        strangers, reference, margin, total))
    return rows


EQUAL_STRANGERS = "max_mean@="  # max_mean at the stranger rate of max (LFW; reporting only)


def equal_strangers_row(template_people: np.ndarray, templates: np.ndarray,
                        probe_people: np.ndarray, probes: np.ndarray, strangers: np.ndarray,
                        reference: RuleRow, margin: float, total: int) -> RuleRow:
    """``max_mean`` at the threshold where it accepts no more of these strangers than the
    ``reference`` row did: what fusion adds at one false-accept rate (for reporting only,
    since the threshold is then read off the evaluation set)."""
    stranger_d, _ = rule_decisions("max_mean", template_people, templates, strangers)
    eligible = stranger_d.score[stranger_d.lead >= margin]
    allowed = reference.strangers_accepted * len(strangers) / max(len(eligible), 1)
    threshold = threshold_for_rate(eligible, allowed) if len(eligible) else reference.threshold
    threshold = max(threshold, reference.threshold)
    probe_d, people = rule_decisions("max_mean", template_people, templates, probes)
    ok = probe_d.accepted(threshold, margin)
    chosen = people[probe_d.best]
    return RuleRow(EQUAL_STRANGERS, threshold,
                   float(np.sum(ok & (chosen == probe_people))) / max(total, 1),
                   float(np.sum(ok & (chosen != probe_people))) / max(total, 1),
                   float(stranger_d.accepted(threshold, margin).sum()) / max(len(strangers), 1))


def format_rules_table(rows: Sequence[RuleRow], note: str) -> str:
    """The table as text."""
    lines = [f"{'rule':<10} {'threshold':>9} {'named':>8} {'wrong':>7} {'strangers':>10}"]
    lines += [f"{r.rule:<10} {r.threshold:>9.4f} {100 * r.named:>7.2f}% "
              f"{100 * r.wrong_person:>6.2f}% {100 * r.strangers_accepted:>9.2f}%" for r in rows]
    return "\n".join([*lines, note])


def utkface_vectors(dataset: Path, embed_image: EmbedFn, *, model_id: str, count: int,
                    cache_dir: Path | None = None, progress: ProgressFn = no_progress
                    ) -> np.ndarray:
    """Unit vectors of the first ``count`` UTKFace images (sorted names) that have a face,
    through the product pipeline (largest face, as the kiosk), cached per model."""
    from faceguard.paths import train_cache_dir
    from faceguard.vision.image_io import load_image

    folder = cache_dir if cache_dir is not None else train_cache_dir() / "eval"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    path = folder / f"utkface_{safe}_{count}.npy"
    if path.is_file():
        return np.load(path)
    names = sorted(p.name for p in (dataset / "images").glob("*.jpg"))[:count]
    if len(names) < count:
        raise FaceGuardError(f"{dataset / 'images'} holds {len(names)} JPEG images, not {count}")
    vectors = []
    for done, name in enumerate(names, 1):
        try:
            vector = embed_image(load_image(dataset / "images" / name))
        except ImageError:
            vector = None
        if vector is not None:
            vectors.append(vector)
        progress("embedding UTKFace", done, len(names))
    out = _unit(np.stack(vectors))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out
