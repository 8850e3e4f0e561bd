"""Reading images from files and bytes: every odd input becomes 8-bit RGB or a clear error."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import ImageError

MAX_PIXELS = 40_000_000  # 40 megapixels: larger than any camera photo an admin enrols
MAX_FILE_BYTES = 200 * 1024 * 1024


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def is_image_file(path: Path) -> bool:
    """Whether a path is a file with one of the image suffixes FaceGuard reads."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3); raise ImageError with a reason otherwise."""
    return load_image_with_digest(path, max_pixels)[0]


def load_image_with_digest(path: str | Path,
                           max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """:func:`load_image` and the SHA-256 of the file's bytes (one read)."""
    file = Path(path)
    if file.is_dir():
        raise ImageError(f"{file} is a directory, not an image")
    if not file.exists():
        raise ImageError(f"{file}: no such file")
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{file}: file is {size // (1024 * 1024)} MB, too large for an image")
        data = file.read_bytes()
    except PermissionError as error:
        raise ImageError(f"{file}: permission denied") from error
    except OSError as error:
        raise ImageError(f"{file}: cannot be read ({error.strerror or error})") from error
    try:
        return decode_image(data, max_pixels=max_pixels), hashlib.sha256(data).hexdigest()
    except ImageError as error:
        raise ImageError(f"{file}: {error}") from None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to uint8 RGB, refusing empty, corrupt or huge images."""
    if not data:
        raise ImageError("the file is empty")
    dims = image_dimensions(data)
    if dims is not None and dims[0] * dims[1] > max_pixels:
        raise ImageError(
            f"image is {dims[0]}x{dims[1]} pixels; the limit is {max_pixels / 1e6:.0f} megapixels")
    buffer = np.frombuffer(data, dtype=np.uint8)
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    # JPEGs: IMREAD_COLOR applies the EXIF orientation. Others: keep depth and alpha to convert.
    flags = cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        decoded = cv2.imdecode(buffer, flags)
    except cv2.error:
        raise ImageError("not a readable image (corrupt or unsupported format)") from None
    if decoded is None or decoded.size == 0:
        raise ImageError("not a readable image (corrupt or unsupported format)")
    if decoded.shape[0] * decoded.shape[1] > max_pixels:
        raise ImageError(f"image is {decoded.shape[1]}x{decoded.shape[0]} pixels; the limit is "
                         f"{max_pixels / 1e6:.0f} megapixels")
    return to_rgb8(decoded)


def to_rgb8(decoded: np.ndarray) -> np.ndarray:
    """Convert an OpenCV-decoded array (grey, BGR, BGRA; 8/16-bit or float) to uint8 RGB."""
    image = decoded
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        # Composite over white: transparent areas must not become black "faces".
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        colour = image[:, :, :3].astype(np.float32)
        image = (colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise ImageError(f"unsupported number of colour channels: {channels}")


CROP_JPEG_QUALITY = 92  # stored face crops: enrolment templates and event crops


def encode_jpeg(image_rgb: np.ndarray, quality: int = CROP_JPEG_QUALITY) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes (stored face crops; JPEG keeps BGR order)."""
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError("A face crop must be an RGB image (H, W, 3) of 8-bit values.")
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                              [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ImageError("The face crop could not be encoded as JPEG.")
    return bytes(buffer.tobytes())


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode stored JPEG bytes to an RGB uint8 array; ImageError if they are damaged."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise ImageError("A stored face crop is damaged and cannot be decoded.")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF, BMP or WebP header; None if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg_dimensions(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data[:2] == b"BM" and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(int(width)), abs(int(height))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_dimensions(data)
    except struct.error:
        return None
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            index += 1
            continue
        marker = data[index + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            index += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[index + 2:index + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            height, width = struct.unpack(">HH", data[index + 5:index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
