"""Area resampling of one image by adaptive average pooling (PyTorch's "area" mode).

MTCNN's image pyramid and its R-Net/O-Net crops are pooled over PyTorch's integer bins:
OpenCV's INTER_AREA weighs fractional pixels and moves the reference's boxes by up to ~20 px
on large photos. A summed-area table is built once per image; every output cell is then the
exact sum of its bin (four corners of the table) divided by the bin's pixel count.

Outputs are channel-first float32 (what the networks take), so no transposing copy follows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np

# Corner indices of a bin in a flat summed-area table: row * stride + column.
CornerIndices = Callable[[int], np.ndarray]


def area_bins(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/end source indices of each output cell of adaptive average pooling."""
    index = np.arange(n_out)
    start = (index * n_in) // n_out
    end = -((-(index + 1) * n_in) // n_out)
    return start, end


class AreaResampler:
    """Pools one image (H, W, C) to whole-image resizes and to crops, float32 (.., C, H, W)."""

    def __init__(self, image: np.ndarray) -> None:
        self.height, self.width = image.shape[:2]
        # Integer sums are exact in int32 up to ~8 megapixels, in float64 beyond.
        depth = cv2.CV_32S if self.height * self.width * 255 < 2**31 else cv2.CV_64F
        table = cv2.integral(np.ascontiguousarray(image, dtype=np.uint8), sdepth=depth)
        self._cells = table.reshape(-1, table.shape[2])  # one row per table cell

    def resize(self, out_width: int, out_height: int) -> np.ndarray:
        """The whole image pooled to (C, out_height, out_width)."""
        corners, counts = _level_plan(self.height, self.width, out_height, out_width)
        return self._pool(corners.__getitem__, counts)[0]

    def crops(self, regions: np.ndarray, size: int) -> np.ndarray:
        """Regions (N, 4) as 0-based [x0, y0, x1, y1) pooled to (N, C, size, size)."""
        x0, y0, x1, y1 = (regions[:, i:i + 1] for i in range(4))
        index = np.arange(size)[None, :]
        heights, widths = y1 - y0, x1 - x0
        row_start = y0 + (index * heights) // size
        row_end = y0 - ((-(index + 1) * heights) // size)
        col_start = x0 + (index * widths) // size
        col_end = x0 - ((-(index + 1) * widths) // size)
        corners = _corners(row_start, row_end, col_start, col_end, self.width + 1)
        return self._pool(corners, _bin_counts(row_start, row_end, col_start, col_end))

    def _pool(self, corners: CornerIndices, counts: np.ndarray) -> np.ndarray:
        """Bin means (N, C, H, W) from the four corners' flat indices and the bins' pixel
        counts (N, H, W): one gather per corner into the same two buffers."""
        cells = self._cells
        total: np.ndarray = cells.take(corners(0), axis=0)
        gathered: np.ndarray = np.empty_like(total)
        # Window sums fit the table's type (int32 tables hold the whole image's sum).
        for corner, add in ((1, False), (2, False), (3, True)):
            cells.take(corners(corner), axis=0, out=gathered)
            if add:
                total += gathered
            else:
                total -= gathered
        sums = total.reshape(*counts.shape, cells.shape[1])
        means = np.empty((counts.shape[0], cells.shape[1], *counts.shape[1:]), np.float32)
        means[...] = sums.transpose(0, 3, 1, 2)
        means /= counts[:, None]
        return means


def _corners(row_start: np.ndarray, row_end: np.ndarray, col_start: np.ndarray,
             col_end: np.ndarray, stride: int) -> CornerIndices:
    """Flat indices of corner 0..3 (end/end, start/end, end/start, start/start) of each bin,
    for per-item bin edges (N, H) and (N, W), made when asked for (one at a time is faster)."""
    rows = (row_end * stride, row_start * stride, row_end * stride, row_start * stride)
    cols = (col_end, col_end, col_start, col_start)

    def corner(i: int) -> np.ndarray:
        return (rows[i][:, :, None] + cols[i][:, None, :]).reshape(-1)

    return corner


def _bin_counts(row_start: np.ndarray, row_end: np.ndarray, col_start: np.ndarray,
                col_end: np.ndarray) -> np.ndarray:
    """Pixels in each bin (N, H, W) as float32."""
    return ((row_end - row_start)[:, :, None] * (col_end - col_start)[:, None, :]).astype(
        np.float32)


@lru_cache(maxsize=64)
def _level_plan(height: int, width: int, out_height: int,
                out_width: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Corner indices and bin counts of a whole-image resize of an image of ``height`` x
    ``width`` (kept: every frame of a camera uses the same pyramid)."""
    (row_start, row_end), (col_start, col_end) = (
        (start[None], end[None]) for start, end in (area_bins(height, out_height),
                                                    area_bins(width, out_width)))
    corners = _corners(row_start, row_end, col_start, col_end, width + 1)
    plan = (tuple(corners(i) for i in range(4)),
            _bin_counts(row_start, row_end, col_start, col_end))
    for array in (*plan[0], plan[1]):
        array.flags.writeable = False
    return plan
