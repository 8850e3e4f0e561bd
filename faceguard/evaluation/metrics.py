"""Face verification metrics in plain numpy: LFW pairs, 10-fold accuracy, TAR at FAR, ROC.

Conventions: a pair is declared "same person" when its similarity is strictly above the
threshold. The threshold at a false-accept rate (FAR) is the impostor similarity value with
exactly ``floor(FAR * n)`` impostor scores above it; the true-accept rate (TAR) is the
fraction of genuine scores above that threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HISTOGRAM_BINS = 20_000  # bins over the cosine range [-1, 1]: 1e-4 wide


class PairsFormatError(ValueError):
    """pairs.txt does not follow the LFW layout."""


@dataclass(frozen=True)
class Pair:
    """One LFW pair: two images (person name, 1-based image number), its fold and label."""

    name_a: str
    number_a: int
    name_b: str
    number_b: int
    fold: int
    same: bool

    @property
    def image_a(self) -> str:
        """Path of the first image, relative to the dataset folder."""
        return image_relpath(self.name_a, self.number_a)

    @property
    def image_b(self) -> str:
        """Path of the second image, relative to the dataset folder."""
        return image_relpath(self.name_b, self.number_b)


def image_relpath(name: str, number: int) -> str:
    """``images/<Name>/<Name>_<NNNN>.jpg``."""
    return f"images/{name}/{name}_{number:04d}.jpg"


def parse_pairs(text: str) -> list[Pair]:
    """Parse pairs.txt: a "folds count" header, then per fold matched then mismatched lines."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or len(lines[0]) != 2:
        raise PairsFormatError("the first line must be '<folds> <pairs per fold>'")
    try:
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except ValueError as error:
        raise PairsFormatError("the first line must hold two whole numbers") from error
    body = lines[1:]
    if folds <= 0 or per_fold <= 0 or len(body) != 2 * folds * per_fold:
        raise PairsFormatError(f"expected {2 * folds * per_fold} pair lines after the header "
                               f"'{folds} {per_fold}', found {len(body)}")
    pairs: list[Pair] = []
    for index, fields in enumerate(body):
        fold, within = divmod(index, 2 * per_fold)
        same = within < per_fold
        try:
            if same and len(fields) == 3:
                pairs.append(Pair(fields[0], int(fields[1]), fields[0], int(fields[2]), fold,
                                  True))
            elif not same and len(fields) == 4:
                pairs.append(Pair(fields[0], int(fields[1]), fields[2], int(fields[3]), fold,
                                  False))
            else:
                raise ValueError
        except ValueError as error:
            kind = "matched 'name i j'" if same else "mismatched 'name1 i name2 j'"
            raise PairsFormatError(f"line {index + 2}: expected a {kind} pair, got "
                                   f"{' '.join(fields)!r}") from error
    return pairs


def read_pairs(path: str | Path) -> list[Pair]:
    """Read and parse a pairs.txt file."""
    return parse_pairs(Path(path).read_text(encoding="utf-8"))


# -- 10-fold accuracy -----------------------------------------------------------------------

@dataclass(frozen=True)
class FoldResult:
    """Cross-validated verification accuracy."""

    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean accuracy over the folds."""
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Standard deviation of the fold accuracies (population, ddof=0, as in LFW code)."""
        return float(np.std(self.accuracies))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score > threshold`` on these pairs.

    Candidates are the midpoints between consecutive distinct sorted scores, plus one below
    and one at the top of all scores; the lowest best candidate wins ties.
    """
    values = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(labels, dtype=bool)
    if values.size == 0 or values.shape != truth.shape:
        raise ValueError("need as many labels as scores, and at least one")
    order = np.argsort(values, kind="stable")
    ordered, same = values[order], truth[order]
    n, genuine = values.size, int(same.sum())
    # k = how many of the lowest scores are declared "different": k in 0..n
    impostors_below = np.concatenate([[0], np.cumsum(~same)])
    genuine_below = np.concatenate([[0], np.cumsum(same)])
    correct = impostors_below + (genuine - genuine_below)
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = ordered[1:] > ordered[:-1]
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == 0:
        threshold = float(np.nextafter(ordered[0], -np.inf))
    elif k == n:
        threshold = float(ordered[-1])
    else:
        threshold = float((ordered[k - 1] + ordered[k]) / 2)
    return threshold, float(correct[k] / n)


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> FoldResult:
    """Standard LFW protocol: each fold is scored at the best threshold of the other folds."""
    values = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(labels, dtype=bool)
    fold_ids = np.asarray(folds)
    present = np.unique(fold_ids)
    if present.size < 2:
        raise ValueError("cross-validation needs pairs in at least two folds")
    accuracies, thresholds = [], []
    for fold in present:
        test = fold_ids == fold
        threshold, _ = best_threshold(values[~test], truth[~test])
        accuracies.append(float(np.mean((values[test] > threshold) == truth[test])))
        thresholds.append(threshold)
    return FoldResult(tuple(accuracies), tuple(thresholds))


# -- thresholds at a false-accept rate ---------------------------------------------------------

def _allowed_above(far: float, total: int) -> int:
    """How many impostor scores may lie above the threshold: floor(FAR * n)."""
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"FAR must be in [0, 1], got {far}")
    return min(total, math.floor(far * total + 1e-9))


def _threshold_from_top(top: np.ndarray, total: int, far: float) -> float:
    """Threshold at ``far`` from the largest impostor scores (descending) out of ``total``."""
    k = _allowed_above(far, total)
    if k >= total:
        return float(np.nextafter(np.float64(top[-1]), -np.inf))
    if k >= top.size:
        raise ValueError(f"FAR {far} needs the top {k + 1} impostor scores; only "
                         f"{top.size} were kept")
    return float(top[k])


def calibrate_threshold(impostor_scores: np.ndarray, far: float) -> float:
    """The similarity threshold with a fraction ``far`` of impostor scores above it.

    Exact (``np.partition``, no full sort). Use it on impostor pairs that are NOT the test
    set: calibrating on LFW is for reporting only; the shipped threshold should come from a
    held-out, non-LFW set (e.g. UTKFace teacher pairs).
    """
    values = np.asarray(impostor_scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no impostor scores")
    n = values.size
    k = _allowed_above(far, n)
    if k >= n:
        return float(np.nextafter(values.min(), -np.inf))
    return float(np.partition(values, n - 1 - k)[n - 1 - k])


def tar_at_threshold(genuine_scores: np.ndarray, threshold: float) -> float:
    """Fraction of genuine scores strictly above the threshold."""
    values = np.asarray(genuine_scores, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    return float(np.mean(values > threshold))


def tar_at_far(genuine_scores: np.ndarray, impostor_scores: np.ndarray,
               far: float) -> tuple[float, float]:
    """(TAR, threshold) at a false-accept rate, from in-memory score arrays."""
    threshold = calibrate_threshold(impostor_scores, far)
    return tar_at_threshold(genuine_scores, threshold), threshold


@dataclass(frozen=True)
class RocCurve:
    """ROC points, thresholds descending: FAR and TAR of ``score >= threshold``."""

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray


class ImpostorScores:
    """Streaming impostor statistics for tens of millions of pairs.

    Keeps the ``keep`` largest scores exactly (for thresholds at small FARs) and a histogram
    of all scores (for the ROC curve), so the scores never need to be held or sorted at once.
    """

    def __init__(self, keep: int, bins: int = HISTOGRAM_BINS) -> None:
        """Keep the ``keep`` largest scores; histogram with ``bins`` bins over [-1, 1]."""
        self.keep = max(1, int(keep))
        self.bins = int(bins)
        self.count = 0
        self.histogram = np.zeros(self.bins, dtype=np.int64)
        self._top = np.empty(0, dtype=np.float32)
        self._sorted: np.ndarray | None = None

    def add(self, scores: np.ndarray) -> None:
        """Add a batch of impostor scores."""
        values = np.asarray(scores, dtype=np.float32).ravel()
        if values.size == 0:
            return
        self.count += values.size
        index = np.clip(((values.astype(np.float64) + 1.0) * (self.bins / 2)).astype(np.int64),
                        0, self.bins - 1)
        self.histogram += np.bincount(index, minlength=self.bins)
        if values.size > self.keep:
            values = np.partition(values, values.size - self.keep)[values.size - self.keep:]
        top = np.concatenate([self._top, values])
        if top.size > self.keep:
            top = np.partition(top, top.size - self.keep)[top.size - self.keep:]
        self._top = top
        self._sorted = None

    def top(self) -> np.ndarray:
        """The kept largest scores, descending."""
        if self._sorted is None:
            self._sorted = np.sort(self._top)[::-1]
        return self._sorted

    def threshold(self, far: float) -> float:
        """Exact threshold at ``far`` (needs ``keep > floor(far * count)``)."""
        if self.count == 0:
            raise ValueError("no impostor scores")
        return _threshold_from_top(self.top(), self.count, far)

    def roc(self, genuine_scores: np.ndarray) -> RocCurve:
        """ROC at the histogram's bin edges (FAR and TAR of ``score >= edge``)."""
        genuine = np.sort(np.asarray(genuine_scores, dtype=np.float64))
        edges = -1.0 + 2.0 * np.arange(self.bins) / self.bins
        at_or_above = np.cumsum(self.histogram[::-1])[::-1]
        far = at_or_above / max(self.count, 1)
        tar = (genuine.size - np.searchsorted(genuine, edges, side="left")) / max(genuine.size, 1)
        return RocCurve(edges[::-1].copy(), far[::-1].copy(), tar[::-1].astype(np.float64))


def roc_curve(genuine_scores: np.ndarray, impostor_scores: np.ndarray,
              bins: int = HISTOGRAM_BINS) -> RocCurve:
    """ROC of in-memory score arrays (see :class:`ImpostorScores`)."""
    impostors = np.asarray(impostor_scores, dtype=np.float32)
    stats = ImpostorScores(1, bins)
    stats.add(impostors)
    return stats.roc(genuine_scores)


def far_key(far: float) -> str:
    """A short, stable JSON key for a FAR: 0.001 -> "1e-3", 0.00025 -> "2.5e-4"."""
    mantissa, exponent = f"{far:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"

