"""Reading images: odd formats become RGB, bad inputs give clear errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.errors import ImageError
from faceguard.vision.image_io import image_dimensions, load_image


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_png_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    bgra = np.zeros((10, 10, 4), np.uint8)
    bgra[:, :5] = (255, 0, 0, 255)  # opaque blue
    image = load_image(_write(tmp_path / "a.png", bgra))
    assert image.shape == (10, 10, 3)
    assert tuple(image[0, 0]) == (0, 0, 255)  # RGB
    assert tuple(image[0, 9]) == (255, 255, 255)  # transparent -> white


def test_sixteen_bit_and_grey(tmp_path: Path) -> None:
    deep = np.full((8, 8, 3), 65535, np.uint16)
    assert load_image(_write(tmp_path / "d.png", deep)).max() == 255
    grey = np.full((8, 8), 77, np.uint8)
    image = load_image(_write(tmp_path / "g.png", grey))
    assert image.shape == (8, 8, 3) and (image == 77).all()
    grey_jpeg = load_image(_write(tmp_path / "g.jpg", grey))
    assert grey_jpeg.shape == (8, 8, 3)


def test_corrupt_empty_directory_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def _huge_png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_huge_image_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(_huge_png_header(20000, 20000))
    with pytest.raises(ImageError, match="20000x20000"):
        load_image(path)


def test_dimensions_from_headers(tmp_path: Path) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    for ext in ("png", "jpg", "bmp", "webp"):
        data = (_write(tmp_path / f"x.{ext}", image)).read_bytes()
        assert image_dimensions(data) == (53, 37), ext
