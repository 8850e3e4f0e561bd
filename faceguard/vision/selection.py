"""Which face counts: whole faces before faces cut off by the frame border.

MTCNN also finds faces that the image border cuts: their box runs past the frame and the
aligned crop is mostly replicated border, so their embedding is noise. In 203 of LFW's 7,701
images such a partial face was the largest one, not the person the photo is about. At a door
the same rule keeps someone half in view from beating the person in front of the camera.

A face is *partial* when less than :data:`MIN_INSIDE` of its box lies inside the image or a
landmark lies outside it (or within :data:`EDGE_MARGIN` of the frame's size from the edge).
Ranking: whole faces first, then partial ones; within each group the largest first
(``largest``, the kiosk's rule) or the one nearest the image centre first (``central``, the
LFW convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from faceguard.vision.mtcnn import Face

Pick = Literal["largest", "central"]
PICKS: tuple[Pick, ...] = ("largest", "central")
MIN_INSIDE = 0.85  # share of the box area that must lie inside the image
EDGE_MARGIN = 0.01  # landmarks closer to the edge than this share of the image are "cut"


def inside_fraction(face: Face, width: int, height: int) -> float:
    """Share of the face box that lies inside a ``width`` x ``height`` image."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    if area <= 0:
        return 0.0
    inside = max(min(x2, width) - max(x1, 0.0), 0.0) * max(min(y2, height) - max(y1, 0.0), 0.0)
    return inside / area


def cut_reason(face: Face, width: int, height: int) -> str | None:
    """Why a face counts as cut off by the image border (None for a whole face)."""
    inside = inside_fraction(face, width, height)
    if inside < MIN_INSIDE:
        return f"cut off by the image border ({inside:.0%} of the face inside)"
    margin_x, margin_y = EDGE_MARGIN * width, EDGE_MARGIN * height
    points = np.asarray(face.landmarks, dtype=np.float64).reshape(-1, 2)
    outside = (points[:, 0] < margin_x) | (points[:, 0] > width - margin_x) | \
        (points[:, 1] < margin_y) | (points[:, 1] > height - margin_y)
    if np.any(outside):
        return "cut off by the image border (a landmark at or past the edge)"
    return None


def _centre_distance(face: Face, width: int, height: int) -> float:
    cx = (float(face.box[0]) + float(face.box[2])) / 2
    cy = (float(face.box[1]) + float(face.box[3])) / 2
    return float(np.hypot(cx - width / 2, cy - height / 2))


def nearest_centre(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face whose box centre is nearest the image centre, cut or not (None: no face)."""
    return min(faces, key=lambda face: _centre_distance(face, width, height), default=None)


def rank_faces(faces: Sequence[Face], width: int, height: int,
               pick: Pick = "largest") -> list[Face]:
    """Faces in the order they count: whole before partial, then by ``pick``."""
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {PICKS}, not {pick!r}")

    def key(face: Face) -> tuple[bool, float]:
        partial = cut_reason(face, width, height) is not None
        order = -face.size if pick == "largest" else _centre_distance(face, width, height)
        return partial, order

    return sorted(faces, key=key)


def why_not_used(face: Face, chosen: Face, width: int, height: int, pick: Pick) -> str:
    """Plain words for why ``face`` is not the one that counts (``chosen`` is)."""
    cut = cut_reason(face, width, height)
    if cut is not None and cut_reason(chosen, width, height) is None:
        return cut
    if pick == "central":
        return "farther from the image centre than the face used"
    return "smaller than the face used"
