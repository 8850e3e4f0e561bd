"""Scoring one embedder's LFW vectors: the standard 10-fold accuracy on the pairs of
pairs.txt, and TAR at the report's FARs over ALL pairs among the images those pairs name
(computed in row blocks; impostors kept as their top scores and a histogram).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceguard.evaluation.lfw_embeddings import STATUS_FALLBACK, Embeddings
from faceguard.evaluation.lfw_pairs import LfwSubset
from faceguard.evaluation.metrics import (
    FoldResult,
    ImpostorScores,
    RocCurve,
    far_key,
    kfold_accuracy,
    tar_at_threshold,
)

REPORT_FARS = (1e-3, 1e-4)
BLOCK_ROWS = 512
CALIBRATION_NOTE = ("calibrated on LFW impostor pairs: for reporting only; calibrate the "
                    "shipped threshold on a held-out non-LFW set")


@dataclass
class VerificationScores:
    """Everything measured for one embedder."""

    model_id: str
    images: int
    images_without_face: int
    images_fallback: int
    pairs: int
    pairs_failed: int
    genuine_pairs_failed: int
    folds: FoldResult
    tar_at_far: dict[float, float]
    threshold_at_far: dict[float, float]
    genuine_pairs_all: int
    impostor_pairs_all: int
    roc: RocCurve = field(repr=False)
    calibration: tuple[float, float] | None = None
    ms_per_face: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the report (fractions, not percentages)."""
        report: dict[str, Any] = {
            "model_id": self.model_id,
            "accuracy_mean": round(self.folds.mean, 5),
            "accuracy_std": round(self.folds.std, 5),
            "fold_accuracies": [round(a, 5) for a in self.folds.accuracies],
            "tar_at_far": {far_key(f): round(v, 5) for f, v in self.tar_at_far.items()},
            "threshold_at_far": {far_key(f): round(v, 5)
                                 for f, v in self.threshold_at_far.items()},
            "images": self.images,
            "images_without_face": self.images_without_face,
            "pairs": self.pairs,
            "pairs_failed": self.pairs_failed,
            "genuine_pairs_failed": self.genuine_pairs_failed,
            "genuine_pairs_all": self.genuine_pairs_all,
            "impostor_pairs_all": self.impostor_pairs_all,
            "ms_per_face": self.ms_per_face,
        }
        if self.images_fallback:
            report["images_fallback_box"] = self.images_fallback
        if self.calibration is not None:
            report["calibration"] = {"far": self.calibration[0],
                                     "threshold": round(self.calibration[1], 5),
                                     "note": CALIBRATION_NOTE}
        return report


def pair_scores(pair_rows: np.ndarray, vectors: np.ndarray, has_face: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair; -1 where either image has no face."""
    a, b = pair_rows[:, 0], pair_rows[:, 1]
    scores = np.einsum("ij,ij->i", vectors[a], vectors[b]).astype(np.float64)
    scores[~(has_face[a] & has_face[b])] = -1.0
    return scores


def all_pair_scores(identities: Sequence[str], vectors: np.ndarray, has_face: np.ndarray,
                    max_far: float, block_rows: int = BLOCK_ROWS
                    ) -> tuple[np.ndarray, ImpostorScores]:
    """Genuine scores of every same-identity pair, and impostor statistics of all the others.

    The similarity matrix is computed in row blocks (upper triangle only); the impostor
    side keeps only the top scores needed for ``max_far`` plus a histogram.
    """
    _, ids = np.unique(np.asarray(identities), return_inverse=True)
    n = len(ids)
    sizes = np.bincount(ids)
    genuine_total = int(np.sum(sizes * (sizes - 1) // 2))
    impostor_total = n * (n - 1) // 2 - genuine_total
    impostors = ImpostorScores(math.floor(max_far * impostor_total + 1e-9) + 1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    failed = ~np.asarray(has_face, dtype=bool)
    genuine: list[np.ndarray] = []
    for lo in range(0, n, block_rows):
        hi = min(n, lo + block_rows)
        sims = vectors[lo:hi] @ vectors[lo:].T
        sims[failed[lo:hi], :] = -1.0
        sims[:, failed[lo:]] = -1.0
        upper = np.arange(lo, n)[None, :] > np.arange(lo, hi)[:, None]
        same = ids[lo:hi, None] == ids[None, lo:]
        genuine.append(sims[upper & same])
        impostors.add(sims[upper & ~same])
    scores = np.concatenate(genuine) if genuine else np.empty(0, np.float32)
    return scores.astype(np.float64), impostors


def score_subset(subset: LfwSubset, embeddings: Embeddings,
                 fars: Sequence[float] = REPORT_FARS,
                 calibrate_far: float | None = None) -> VerificationScores:
    """10-fold accuracy on the pairs, TAR at the FARs over all pairs, ROC, calibration."""
    has_face = embeddings.has_face
    scores = pair_scores(subset.pair_rows, embeddings.vectors, has_face)
    folds = kfold_accuracy(scores, subset.labels, subset.folds)
    failed = ~(has_face[subset.pair_rows[:, 0]] & has_face[subset.pair_rows[:, 1]])
    wanted = [*fars, *([calibrate_far] if calibrate_far is not None else [])]
    genuine, impostors = all_pair_scores(subset.identities, embeddings.vectors, has_face,
                                         max(wanted))
    thresholds = {far: impostors.threshold(far) for far in fars}
    tars = {far: tar_at_threshold(genuine, t) for far, t in thresholds.items()}
    calibration = None
    if calibrate_far is not None:
        calibration = (calibrate_far, impostors.threshold(calibrate_far))
    return VerificationScores(
        model_id=embeddings.model_id, images=len(subset.images),
        images_without_face=int(np.sum(~has_face)),
        images_fallback=int(np.sum(embeddings.status == STATUS_FALLBACK)),
        pairs=len(subset.pairs), pairs_failed=int(failed.sum()),
        genuine_pairs_failed=int(np.sum(failed & subset.labels)), folds=folds,
        tar_at_far=tars, threshold_at_far=thresholds, genuine_pairs_all=int(genuine.size),
        impostor_pairs_all=impostors.count, roc=impostors.roc(genuine), calibration=calibration)
