"""Area resampling (pyramid levels, R-Net/O-Net crops) against a plain per-cell reference."""

from __future__ import annotations

import numpy as np

from faceguard.vision.area_resampling import AreaResampler, area_bins
from faceguard.vision.mtcnn import _crop_resize


def _reference_pool(image: np.ndarray, top: int, left: int, height: int, width: int,
                    out_height: int, out_width: int) -> np.ndarray:
    """Adaptive average pooling of image[top:top+height, left:left+width], cell by cell:
    the integer sum of each bin over its pixel count, in float32 (C, H, W)."""
    out = np.empty((image.shape[2], out_height, out_width), np.float32)
    rows, cols = area_bins(height, out_height), area_bins(width, out_width)
    for i in range(out_height):
        for j in range(out_width):
            r0, r1 = top + rows[0][i], top + rows[1][i]
            c0, c1 = left + cols[0][j], left + cols[1][j]
            window = image[r0:r1, c0:c1].astype(np.int64)
            out[:, i, j] = (window.sum(axis=(0, 1)).astype(np.float32)
                            / np.float32(window.shape[0] * window.shape[1]))
    return out


def _image(height: int = 61, width: int = 83, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_resize_matches_reference_and_repeats() -> None:
    image = _image()
    pyramid = AreaResampler(image)
    for out_width, out_height in ((83, 61), (40, 30), (17, 13), (12, 12), (100, 70), (1, 1)):
        expected = _reference_pool(image, 0, 0, 61, 83, out_height, out_width)
        assert np.array_equal(pyramid.resize(out_width, out_height), expected)
        assert np.array_equal(pyramid.resize(out_width, out_height), expected)  # cached plan
    other = _image(seed=4)  # same size, other pixels: the cached plan is only geometry
    assert np.array_equal(AreaResampler(other).resize(40, 30),
                          _reference_pool(other, 0, 0, 61, 83, 30, 40))


def test_crops_match_reference() -> None:
    image = _image()
    rng = np.random.default_rng(0)
    x0 = rng.integers(0, 70, 12)
    y0 = rng.integers(0, 50, 12)
    regions = np.stack([x0, y0, x0 + rng.integers(1, 84 - x0), y0 + rng.integers(1, 62 - y0)],
                       axis=1)
    regions[0] = (0, 0, 83, 61)  # the whole image
    regions[1] = (5, 7, 6, 8)  # a single pixel
    for size in (24, 48, 5):
        crops = AreaResampler(image).crops(regions, size)
        assert crops.shape == (12, 3, size, size) and crops.dtype == np.float32
        for crop, (left, top, right, bottom) in zip(crops, regions, strict=True):
            expected = _reference_pool(image, top, left, bottom - top, right - left, size, size)
            assert np.array_equal(crop, expected)


def test_box_crops_clip_to_image_and_skip_empty_boxes() -> None:
    image = _image()
    boxes = np.array([
        [-20.7, -5.2, 30.9, 40.1],   # partly left of and above the image
        [60.0, 40.0, 120.5, 90.0],   # partly right of and below it
        [-50.0, -50.0, 200.0, 200.0],  # around the whole image
        [10.0, 10.0, 10.0, 10.0],    # one pixel (inclusive ends)
        [30.0, 30.0, 20.0, 25.0],    # inverted: empty
        [100.0, 10.0, 150.0, 40.0],  # outside the image: empty
        [12.3, 8.9, 44.6, 37.2],     # inside
    ], np.float32)
    crops, kept = _crop_resize(AreaResampler(image), boxes, 24)
    assert kept.tolist() == [0, 1, 2, 3, 6]
    for crop, index in zip(crops, kept, strict=True):
        x1, y1, x2, y2 = (int(np.trunc(v)) for v in boxes[index])
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, 83), min(y2, 61)
        expected = _reference_pool(image, y1 - 1, x1 - 1, y2 - y1 + 1, x2 - x1 + 1, 24, 24)
        assert np.array_equal(crop, expected)
    empty, none_kept = _crop_resize(AreaResampler(image), boxes[4:6], 48)
    assert empty.shape == (0, 3, 48, 48) and none_kept.tolist() == []
