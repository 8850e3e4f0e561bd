"""Presentation-attack detection figures: APCER, BPCER, ACER and a DET curve PNG.

Terms of ISO/IEC 30107-3: APCER is the share of attack presentations accepted as live
(score >= threshold), BPCER the share of live (bona fide) presentations refused, ACER their
mean. A score of None ("unsure") is never accepted: it counts as refused for both. These
figures describe the images given; they are no substitute for a certified test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.evaluation.roc_plot import (
    AXIS,
    BOTTOM,
    COLOURS,
    GRID,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    _text,
    write_png,
)

Score = float | None
DET_DECADES = (-3, 0)  # both axes from 0.1% to 100%, log scale


@dataclass(frozen=True)
class PadRates:
    """Error rates at one threshold, with the counts they rest on."""

    apcer: float
    bpcer: float
    acer: float
    threshold: float
    live: int
    attack: int
    live_unsure: int
    attack_unsure: int

    def as_json(self) -> dict[str, float | int]:
        """The ``faceguard eval liveness --json`` object (rates 0..1, counts of images)."""
        return {"apcer": self.apcer, "bpcer": self.bpcer, "acer": self.acer,
                "threshold": self.threshold, "live": self.live, "attack": self.attack}


def _scores(values: Sequence[Score]) -> tuple[np.ndarray, int]:
    """Known scores as an array, and how many were None (or NaN)."""
    known = np.array([v for v in values if v is not None], dtype=np.float64)
    finite = known[np.isfinite(known)]
    return finite, len(values) - len(finite)


def pad_rates(live_scores: Sequence[Score], attack_scores: Sequence[Score],
              threshold: float) -> PadRates:
    """APCER, BPCER and ACER at ``threshold`` (accepted as live: score >= threshold)."""
    if not live_scores or not attack_scores:
        raise ValueError("APCER and BPCER need at least one live and one attack score")
    live, live_unsure = _scores(live_scores)
    attack, attack_unsure = _scores(attack_scores)
    apcer = float(np.count_nonzero(attack >= threshold)) / len(attack_scores)
    bpcer = float(len(live_scores) - np.count_nonzero(live >= threshold)) / len(live_scores)
    return PadRates(apcer, bpcer, (apcer + bpcer) / 2, float(threshold), len(live_scores),
                    len(attack_scores), live_unsure, attack_unsure)


@dataclass(frozen=True)
class DetCurve:
    """APCER and BPCER at every distinct threshold (ascending thresholds)."""

    thresholds: np.ndarray
    apcer: np.ndarray
    bpcer: np.ndarray

    def equal_error(self) -> tuple[float, float]:
        """(rate, threshold) where APCER and BPCER are closest (their mean there)."""
        i = int(np.argmin(np.abs(self.apcer - self.bpcer)))
        return float((self.apcer[i] + self.bpcer[i]) / 2), float(self.thresholds[i])


def det_curve(live_scores: Sequence[Score], attack_scores: Sequence[Score]) -> DetCurve:
    """The trade-off over all thresholds: each distinct score, plus one above them all."""
    live, _ = _scores(live_scores)
    attack, _ = _scores(attack_scores)
    if not live_scores or not attack_scores:
        raise ValueError("a DET curve needs at least one live and one attack score")
    both = np.concatenate([live, attack])
    top = float(both.max()) + 1e-6 if both.size else 1.0
    thresholds = np.unique(np.concatenate([both, [top]]))
    live_sorted, attack_sorted = np.sort(live), np.sort(attack)
    accepted_attacks = len(attack_sorted) - np.searchsorted(attack_sorted, thresholds, "left")
    accepted_live = len(live_sorted) - np.searchsorted(live_sorted, thresholds, "left")
    apcer = accepted_attacks / len(attack_scores)
    bpcer = 1.0 - accepted_live / len(live_scores)
    return DetCurve(thresholds, apcer.astype(np.float64), bpcer.astype(np.float64))


def _axis(rate: np.ndarray | float, start: int, length: int, flip: bool) -> np.ndarray:
    lo, hi = DET_DECADES
    logs = np.log10(np.clip(np.asarray(rate, np.float64), 10.0 ** lo, 10.0 ** hi))
    frac = (logs - lo) / (hi - lo)
    return start + ((1.0 - frac) if flip else frac) * length


def _xy(apcer: np.ndarray | float, bpcer: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates: APCER on x, BPCER on y, both log scale."""
    return (_axis(apcer, LEFT, WIDTH - LEFT - RIGHT, False),
            _axis(bpcer, TOP, HEIGHT - TOP - BOTTOM, True))


def render_det(curves: Sequence[tuple[str, DetCurve]], title: str = "DET",
               points: Sequence[PadRates] = ()) -> np.ndarray:
    """The DET plot as a BGR image; ``points`` mark operating points (one per curve)."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    lo, hi = DET_DECADES
    for decade in range(lo, hi + 1):
        value = 10.0 ** decade
        x, y = (round(float(v)) for v in _xy(value, value))
        cv2.line(image, (x, TOP), (x, bottom), GRID, 1)
        cv2.line(image, (LEFT, y), (right, y), GRID, 1)
        label = f"{100 * value:g}%"
        _text(image, label, (x, bottom + 22), centre=True)
        _text(image, label, (LEFT - 55, y + 5))
    diagonal = np.stack(_xy(np.array([1e-3, 1.0]), np.array([1e-3, 1.0])), axis=1)
    cv2.line(image, tuple(int(v) for v in diagonal[0]), tuple(int(v) for v in diagonal[1]),
             (200, 200, 200), 1, cv2.LINE_AA)
    cv2.rectangle(image, (LEFT, TOP), (right, bottom), AXIS, 1)
    _text(image, "APCER (attacks accepted, log scale)", ((LEFT + right) // 2, HEIGHT - 25),
          0.55, centre=True)
    _text(image, "BPCER (live refused)", (LEFT, TOP - 10), 0.5)
    _text(image, title, (WIDTH // 2, 30), 0.65, centre=True)
    for i, (label, curve) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        xs, ys = _xy(curve.apcer, curve.bpcer)
        pts = np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32)
        if len(pts) >= 2:
            cv2.polylines(image, [pts.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA,
                          shift=4)
        _text(image, label, (right - 260, TOP + 22 + 20 * i), 0.45, colour)
        if i < len(points):
            p = points[i]
            px, py = (round(float(v)) for v in _xy(p.apcer, p.bpcer))
            cv2.circle(image, (px, py), 5, colour, -1, cv2.LINE_AA)
            _text(image, f"t={p.threshold:g}: APCER {100 * p.apcer:.1f}%, "
                  f"BPCER {100 * p.bpcer:.1f}%", (px + 8, py - 8), 0.42, colour)
    return image


def draw_det(path: str | Path, curves: Sequence[tuple[str, DetCurve]], title: str = "DET",
             points: Sequence[PadRates] = ()) -> Path:
    """Render the DET curves and write them to a .png file; PlotError when that fails."""
    return write_png(path, render_det(curves, title, points))
