"""ROC curves as a PNG, drawn with OpenCV: log-scale FAR on x, TAR on y, one curve per model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.evaluation.metrics import far_key

WIDTH, HEIGHT = 900, 640
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 60, 80
FAR_DECADES = (-5, 0)  # x axis: FAR from 1e-5 to 1
COLOURS = ((200, 90, 20), (30, 120, 230), (60, 160, 60), (160, 60, 160), (40, 40, 200))
FONT = cv2.FONT_HERSHEY_SIMPLEX
GRID, AXIS, TEXT = (225, 225, 225), (60, 60, 60), (30, 30, 30)


class PlotError(FaceGuardError):
    """The ROC image cannot be written."""


@dataclass(frozen=True)
class RocSeries:
    """One curve: a label, FAR and TAR arrays, and TAR values to mark at given FARs."""

    label: str
    far: np.ndarray
    tar: np.ndarray
    marks: dict[float, float] = field(default_factory=dict)


def _x(far: np.ndarray | float) -> np.ndarray:
    """Pixel column of FAR values (log scale, clipped to the axis)."""
    lo, hi = FAR_DECADES
    logs = np.log10(np.clip(np.asarray(far, dtype=np.float64), 10.0 ** lo, 10.0 ** hi))
    return LEFT + (logs - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT)


def _y(tar: np.ndarray | float) -> np.ndarray:
    """Pixel row of TAR values (0 at the bottom, 1 at the top)."""
    return TOP + (1.0 - np.clip(np.asarray(tar, dtype=np.float64), 0.0, 1.0)) * (
        HEIGHT - TOP - BOTTOM)


def _px(far: float) -> int:
    """Pixel column of one FAR."""
    return round(float(_x(far)))


def _py(tar: float) -> int:
    """Pixel row of one TAR."""
    return round(float(_y(tar)))


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45,
          colour: tuple[int, int, int] = TEXT, centre: bool = False) -> None:
    """Anti-aliased text; ``centre`` centres it horizontally on ``org``."""
    (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    x = org[0] - w // 2 if centre else org[0]
    cv2.putText(image, text, (x, org[1]), FONT, scale, colour, 1, cv2.LINE_AA)


def _dashed_vline(image: np.ndarray, x: int, colour: tuple[int, int, int]) -> None:
    """A dashed vertical line across the plot area."""
    for y in range(TOP, HEIGHT - BOTTOM, 10):
        cv2.line(image, (x, y), (x, min(y + 5, HEIGHT - BOTTOM)), colour, 1, cv2.LINE_AA)


def _axes(image: np.ndarray, title: str) -> None:
    """Grid, ticks, tick labels, axis titles and the title."""
    lo, hi = FAR_DECADES
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    for decade in range(lo, hi):
        for step in range(2, 10):
            x = _px(step * 10.0 ** decade)
            cv2.line(image, (x, TOP), (x, bottom), (242, 242, 242), 1)
    for decade in range(lo, hi + 1):
        x = _px(10.0 ** decade)
        cv2.line(image, (x, TOP), (x, bottom), GRID, 1)
        cv2.line(image, (x, bottom), (x, bottom + 5), AXIS, 1)
        _text(image, "1" if decade == 0 else f"1e{decade}", (x, bottom + 22), centre=True)
    for tenth in range(11):
        y = _py(tenth / 10)
        cv2.line(image, (LEFT, y), (right, y), GRID, 1)
        cv2.line(image, (LEFT - 5, y), (LEFT, y), AXIS, 1)
        _text(image, f"{tenth / 10:.1f}", (LEFT - 40, y + 5))
    cv2.rectangle(image, (LEFT, TOP), (right, bottom), AXIS, 1)
    _text(image, "false accept rate (FAR, log scale)", ((LEFT + right) // 2, HEIGHT - 25),
          0.55, centre=True)
    label = np.full((30, bottom - TOP, 3), 255, np.uint8)
    _text(label, "true accept rate (TAR)", ((bottom - TOP) // 2, 20), 0.55, centre=True)
    rotated = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
    image[TOP:bottom, 5:35] = np.minimum(image[TOP:bottom, 5:35], rotated)
    _text(image, title, (WIDTH // 2, 35), 0.65, centre=True)


def _legend(image: np.ndarray, series: Sequence[RocSeries]) -> None:
    """Legend box in the lower right corner of the plot."""
    if not series:
        return
    widths = [cv2.getTextSize(s.label, FONT, 0.45, 1)[0][0] for s in series]
    box_w, box_h = max(widths) + 60, 22 * len(series) + 12
    x1, y2 = WIDTH - RIGHT - 12, HEIGHT - BOTTOM - 12
    x0, y0 = x1 - box_w, y2 - box_h
    cv2.rectangle(image, (x0, y0), (x1, y2), (255, 255, 255), -1)
    cv2.rectangle(image, (x0, y0), (x1, y2), AXIS, 1)
    for i, item in enumerate(series):
        y = y0 + 18 + 22 * i
        colour = COLOURS[i % len(COLOURS)]
        cv2.line(image, (x0 + 10, y - 4), (x0 + 40, y - 4), colour, 2, cv2.LINE_AA)
        _text(image, item.label, (x0 + 48, y))


def render_roc(series: Sequence[RocSeries], title: str = "ROC",
               mark_fars: Sequence[float] = (1e-3, 1e-4)) -> np.ndarray:
    """The plot as a BGR image (HEIGHT, WIDTH, 3)."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    _axes(image, title)
    for far in mark_fars:
        x = _px(far)
        _dashed_vline(image, x, (120, 120, 120))
        _text(image, f"FAR {far_key(far)}", (x + 4, TOP + 15), 0.4, (90, 90, 90))
    for i, item in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        fars = np.asarray(item.far, dtype=np.float64)
        tars = np.asarray(item.tar, dtype=np.float64)
        keep = (fars >= 10.0 ** FAR_DECADES[0]) & np.isfinite(tars)
        if np.count_nonzero(keep) >= 2:
            points = np.stack([_x(fars[keep]), _y(tars[keep])], axis=1)
            points = np.round(points * 16).astype(np.int32)  # 4 bits of sub-pixel precision
            cv2.polylines(image, [points.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA,
                          shift=4)
        for far_mark, tar_mark in item.marks.items():
            if not math.isfinite(tar_mark):
                continue
            centre = (_px(far_mark), _py(tar_mark))
            cv2.circle(image, centre, 5, colour, -1, cv2.LINE_AA)
            below = centre[1] + 16 + 14 * i
            row = below if below < HEIGHT - BOTTOM - 4 else centre[1] - 8 - 14 * i
            _text(image, f"{100 * tar_mark:.1f}%", (centre[0] + 8, row), 0.42, colour)
    _legend(image, series)
    return image


def check_target(path: str | Path) -> Path:
    """The output path, if it names a .png file in an existing folder; PlotError otherwise."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise PlotError(f"{target}: the ROC plot is written as PNG; name a .png file")
    if not target.parent.is_dir():
        raise PlotError(f"folder {target.parent} does not exist")
    return target


def draw_roc(path: str | Path, series: Sequence[RocSeries], title: str = "ROC",
             mark_fars: Sequence[float] = (1e-3, 1e-4)) -> Path:
    """Render the curves and write them to a .png file; PlotError when that fails."""
    return write_png(path, render_roc(series, title, mark_fars))


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a rendered plot to the .png file ``path``; PlotError when that fails."""
    target = check_target(path)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise PlotError(f"{target}: PNG encoding failed")
    try:
        target.write_bytes(encoded.tobytes())
    except OSError as error:
        raise PlotError(f"cannot write {target}: {error.strerror or error}") from error
    return target
