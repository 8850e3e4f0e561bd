"""The kiosk protocol on LFW: enrol 2 photos per person, identify the rest, reject strangers.

People with at least 4 images in the LFW pair subset qualify; half of them (a fixed seed)
are enrolled with 2 randomly chosen photos each, their other photos are probes. The other
half, and everyone with fewer than 4 images, are strangers: each of their photos is a probe
that should be rejected. Reported: the rank-1 identification rate (closed set), and at the
product's operating point (threshold + margin, the Matcher's open-set rule) the rate of
enrolled probes correctly accepted and the false-accept rate of strangers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.evaluation.lfw_embeddings import (
    EmbedFn,
    NoteFn,
    ProgressFn,
    embed_subset,
    no_note,
    no_progress,
)
from faceguard.evaluation.lfw_pairs import load_subset
from faceguard.evaluation.open_set import RuleRow, gallery_rules_table
from faceguard.library.matcher import Matcher
from faceguard.library.template_index import DEFAULT_FUSION, Fusion

MIN_IMAGES = 4
ENROL_PER_PERSON = 2
DEFAULT_SEED = 20240601


@dataclass(frozen=True)
class GalleryReport:
    """Counts and rates of one gallery run (rates are None where nothing was counted)."""

    threshold: float
    margin: float
    seed: int
    people_qualifying: int
    people_enrolled: int
    templates: int
    enrolled_probes: int
    enrolled_probes_without_face: int
    rank1_correct: int
    correctly_accepted: int
    wrongly_accepted_as_other: int
    stranger_people: int
    stranger_probes: int
    stranger_probes_without_face: int
    strangers_accepted: int

    @staticmethod
    def _rate(count: int, total: int) -> float | None:
        return round(count / total, 5) if total else None

    @property
    def rank1_rate(self) -> float | None:
        """Closed-set rank-1 rate over all enrolled probes (no face counts as a miss)."""
        return self._rate(self.rank1_correct, self.enrolled_probes)

    @property
    def accept_rate(self) -> float | None:
        """Enrolled probes accepted as the right person at the operating point."""
        return self._rate(self.correctly_accepted, self.enrolled_probes)

    @property
    def misidentification_rate(self) -> float | None:
        """Enrolled probes accepted as another enrolled person."""
        return self._rate(self.wrongly_accepted_as_other, self.enrolled_probes)

    @property
    def stranger_false_accept_rate(self) -> float | None:
        """Stranger probes with a face that were accepted as someone enrolled."""
        return self._rate(self.strangers_accepted,
                          self.stranger_probes - self.stranger_probes_without_face)

    def to_json(self) -> dict[str, Any]:
        """Counts and rates as a JSON object."""
        return {
            "threshold": self.threshold, "margin": self.margin, "seed": self.seed,
            "people_qualifying": self.people_qualifying, "people_enrolled": self.people_enrolled,
            "templates": self.templates, "enrolled_probes": self.enrolled_probes,
            "enrolled_probes_without_face": self.enrolled_probes_without_face,
            "rank1_rate": self.rank1_rate, "accept_rate": self.accept_rate,
            "misidentification_rate": self.misidentification_rate,
            "stranger_people": self.stranger_people, "stranger_probes": self.stranger_probes,
            "stranger_probes_without_face": self.stranger_probes_without_face,
            "stranger_false_accept_rate": self.stranger_false_accept_rate,
        }

    def format(self, header: str) -> str:
        """A human-readable summary."""
        def pct(rate: float | None) -> str:
            return "n/a" if rate is None else f"{100 * rate:.2f}%"

        faced = self.stranger_probes - self.stranger_probes_without_face
        return "\n".join([
            header,
            f"operating point: threshold {self.threshold:.4f}, margin {self.margin:.4f}",
            f"enrolled: {self.people_enrolled} of {self.people_qualifying} people with "
            f">= {MIN_IMAGES} images, {self.templates} templates (seed {self.seed})",
            f"rank-1 identification:        {pct(self.rank1_rate)} of {self.enrolled_probes} "
            f"enrolled probes ({self.enrolled_probes_without_face} without a face)",
            f"accepted as the right person: {pct(self.accept_rate)}",
            f"accepted as someone else:     {pct(self.misidentification_rate)}",
            f"strangers falsely accepted:   {pct(self.stranger_false_accept_rate)} of {faced} "
            f"probes with a face ({self.stranger_people} people; "
            f"{self.stranger_probes_without_face} probes without a face)",
        ])


@dataclass(frozen=True)
class GallerySplit:
    """Who is enrolled with which photos, the enrolled probes and the strangers (image rows)."""

    qualifying: list[str]
    enrolled: list[str]
    template_ids: list[int]
    template_rows: list[int]
    probes: list[tuple[int, int]]  # (image row, person id), with or without a face
    strangers: list[int]
    people: int


def split_gallery(identities: Sequence[str], has_face: np.ndarray,
                  seed: int = DEFAULT_SEED) -> GallerySplit:
    """The protocol's fixed split of the images (see the module docstring)."""
    faces = np.asarray(has_face, dtype=bool)
    by_person: dict[str, list[int]] = {}
    for index, name in enumerate(identities):
        by_person.setdefault(name, []).append(index)
    qualifying = sorted(name for name, rows in by_person.items() if len(rows) >= MIN_IMAGES)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(qualifying))
    enrolled = sorted(qualifying[i] for i in order[len(qualifying) // 2:])
    enrolled_set = set(enrolled)
    template_ids: list[int] = []
    template_rows: list[int] = []
    probes: list[tuple[int, int]] = []  # (image row, person id)
    for person_id, name in enumerate(enrolled):
        rows = by_person[name]
        chosen = set(rng.choice(len(rows), ENROL_PER_PERSON, replace=False).tolist())
        for position, row in enumerate(rows):
            if position not in chosen:
                probes.append((row, person_id))
            elif faces[row]:
                template_ids.append(person_id)
                template_rows.append(row)
    strangers = [row for name, rows in by_person.items() if name not in enrolled_set
                 for row in rows]
    return GallerySplit(qualifying, enrolled, template_ids, template_rows, probes, strangers,
                        len(by_person))


def evaluate_gallery(identities: Sequence[str], vectors: np.ndarray, has_face: np.ndarray, *,
                     threshold: float, margin: float, seed: int = DEFAULT_SEED,
                     fusion: Fusion = DEFAULT_FUSION) -> GalleryReport:
    """Run the protocol on per-image identities and vectors (rows without a face ignored)."""
    faces = np.asarray(has_face, dtype=bool)
    split = split_gallery(identities, faces, seed)
    qualifying, enrolled = split.qualifying, split.enrolled
    template_ids, template_rows = split.template_ids, split.template_rows
    probes, strangers = split.probes, split.strangers
    matcher = Matcher(threshold, margin, fusion)
    if template_rows:
        matcher.load(np.array(template_ids, np.int64), vectors[template_rows])
    probe_rows = [row for row, _ in probes if faces[row]]
    probe_people = [person for row, person in probes if faces[row]]
    rank1 = accepted = other = 0
    if probe_rows:
        for result, person in zip(matcher.search(vectors[probe_rows]), probe_people,
                                  strict=True):
            rank1 += result.best_person_id == person
            accepted += result.person_id == person
            other += result.person_id is not None and result.person_id != person
    stranger_rows = [row for row in strangers if faces[row]]
    strangers_accepted = 0
    if stranger_rows:
        strangers_accepted = sum(r.person_id is not None
                                 for r in matcher.search(vectors[stranger_rows]))
    return GalleryReport(
        threshold=float(threshold), margin=float(margin), seed=seed,
        people_qualifying=len(qualifying), people_enrolled=len(enrolled),
        templates=len(template_rows), enrolled_probes=len(probes),
        enrolled_probes_without_face=len(probes) - len(probe_rows), rank1_correct=int(rank1),
        correctly_accepted=int(accepted), wrongly_accepted_as_other=int(other),
        stranger_people=split.people - len(enrolled), stranger_probes=len(strangers),
        stranger_probes_without_face=len(strangers) - len(stranger_rows),
        strangers_accepted=int(strangers_accepted))


def evaluate_lfw_gallery(dataset_dir: str | os.PathLike[str], embed_image: EmbedFn, *,
                         model_id: str, threshold: float, margin: float,
                         cache_key: str | None = None, limit_pairs: int | None = None,
                         seed: int = DEFAULT_SEED, cache_dir: Path | None = None,
                         progress: ProgressFn = no_progress, note: NoteFn = no_note,
                         fusion: Fusion = DEFAULT_FUSION) -> GalleryReport:
    """The gallery protocol on the LFW pair images, sharing the LFW embedding cache."""
    subset = load_subset(dataset_dir, limit_pairs)
    embeddings = embed_subset(subset, embed_image, model_id=model_id, cache_key=cache_key,
                              cache_dir=cache_dir, progress=progress, note=note)
    return evaluate_gallery(subset.identities, embeddings.vectors, embeddings.has_face,
                            threshold=threshold, margin=margin, seed=seed, fusion=fusion)


def gallery_rules(identities: Sequence[str], vectors: np.ndarray, has_face: np.ndarray, *,
                  thresholds: dict[str, float], margin: float, seed: int = DEFAULT_SEED
                  ) -> list[RuleRow]:
    """The open-set rules table (:mod:`faceguard.evaluation.open_set`) on the same split."""
    faces = np.asarray(has_face, dtype=bool)
    split = split_gallery(identities, faces, seed)
    probe_rows = [row for row, _ in split.probes if faces[row]]
    probe_people = np.array([p for row, p in split.probes if faces[row]], np.int64)
    stranger_rows = [row for row in split.strangers if faces[row]]
    return gallery_rules_table(
        np.array(split.template_ids, np.int64), vectors[split.template_rows], probe_people,
        vectors[probe_rows], vectors[stranger_rows], thresholds, margin,
        enrolled_probes_total=len(split.probes))


def format_levels_table(levels: list[dict[str, Any]], margin: float) -> str:
    """The strictness levels table: each calibrated threshold on the same gallery split, per
    photo and, where the rows carry them, per visit of fused photos."""
    def pct(rate: float | None) -> str:
        return "n/a" if rate is None else f"{100 * rate:.2f}%"

    by_visit = bool(levels) and all("visits" in row for row in levels)
    header = (f"{'level':<12} {'FAR':>8} {'threshold':>9} {'named':>8} {'as other':>9} "
              f"{'strangers':>10}")
    if by_visit:
        k = levels[0]["visits"]["photos_per_visit"]
        header += f" | visits of {k}: {'named':>8} {'as other':>9} {'strangers':>10}"
    lines = [f"strictness levels (UTKFace calibration, margin {margin:.3f}):", header]
    for row in levels:
        line = (f"{row['level']:<12} {row['far']:>8g} {row['threshold']:>9.4f} "
                f"{pct(row['accept_rate']):>8} {pct(row['misidentification_rate']):>9} "
                f"{pct(row['stranger_false_accept_rate']):>10}")
        if by_visit:
            visits = row["visits"]
            line += (f" | {'':13}{pct(visits['accept_rate']):>8} "
                     f"{pct(visits['misidentification_rate']):>9} "
                     f"{pct(visits['stranger_false_accept_rate']):>10}")
        lines.append(line)
    return "\n".join(lines)
