"""Draw the FaceGuard application icon: a shield with a stylised face, in the kiosk's colours.

    python installer/make_icon.py            # writes resources/icons/
    python installer/make_icon.py --check    # exit 1 when the files differ from a fresh render

Everything is drawn here from geometry (no source artwork): the shield and the face are
rasterised once at 1024 px with anti-aliased edges, then area-averaged down to each size in
premultiplied alpha, so edges stay clean at 16 px. Small sizes use a simpler drawing (thicker
rim, larger head, no viewfinder corners) that stays legible.

Outputs: faceguard_<N>.png for N in 16..512, faceguard.ico (Windows; PNG-compressed entries)
and faceguard.icns (macOS; PNG entries). Colours come from resources/styles/brand.json, which
follows resources/styles/kiosk.qss (accent teal on the dark kiosk background).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
BRAND = ROOT / "resources" / "styles" / "brand.json"
BASENAME = "faceguard"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types holding PNG data, and the pixel size of each.
ICNS_TYPES = (("icp4", 16), ("icp5", 32), ("icp6", 64), ("ic07", 128), ("ic08", 256),
              ("ic09", 512), ("ic10", 1024), ("ic11", 32), ("ic12", 64), ("ic13", 256),
              ("ic14", 512))
CANVAS = 1024
SMALL = 32  # at or below this size the simplified drawing is used


@dataclass(frozen=True)
class Palette:
    accent: tuple[int, int, int]  # RGB
    background: tuple[int, int, int]


def hex_rgb(value: str) -> tuple[int, int, int]:
    """'#2bb3a3' -> (43, 179, 163)."""
    text = value.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def load_palette(path: Path = BRAND) -> Palette:
    colours = json.loads(path.read_text(encoding="utf-8"))["colours"]
    return Palette(hex_rgb(colours["accent"]), hex_rgb(colours["background"]))


def _cubic(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
           p3: tuple[float, float], steps: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a, b, c, d = (np.asarray(p, np.float64) for p in (p0, p1, p2, p3))
    curve: np.ndarray = ((1 - t) ** 3) * a + 3 * ((1 - t) ** 2) * t * b \
        + 3 * (1 - t) * (t ** 2) * c + (t ** 3) * d
    return curve


def shield_outline() -> np.ndarray:
    """Closed outline of the shield on the 1024 canvas: arched top, straight sides, point."""
    left, right, top, crest, waist, tip = 176.0, 848.0, 188.0, 120.0, 500.0, 948.0
    t = np.linspace(0.0, 1.0, 96)
    top_edge = np.stack([left + (right - left) * t, top - (top - crest) * np.sin(np.pi * t)], 1)
    right_side = np.array([[right, top], [right, waist]])
    right_curve = _cubic((right, waist), (right, 730.0), (690.0, 860.0), (512.0, tip))
    left_curve = _cubic((512.0, tip), (334.0, 860.0), (left, 730.0), (left, waist))
    return np.concatenate([top_edge, right_side, right_curve, left_curve])


def _mask() -> np.ndarray:
    return np.zeros((CANVAS, CANVAS), np.uint8)


def _fill(points: np.ndarray) -> np.ndarray:
    mask = _mask()
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return mask


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.erode(mask, kernel)


def layers(simple: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage (0..1) of the shield, its dark inner field, and the face, on the 1024 canvas."""
    outer = _fill(shield_outline())
    inner = _erode(outer, 92 if simple else 56)
    face = _mask()
    if simple:
        cv2.circle(face, (512, 430), 150, 255, -1, cv2.LINE_AA)
        cv2.ellipse(face, (512, 850), (270, 200), 0, 180, 360, 255, -1, cv2.LINE_AA)
    else:
        cv2.circle(face, (512, 440), 112, 255, -1, cv2.LINE_AA)
        cv2.ellipse(face, (512, 830), (236, 170), 0, 180, 360, 255, -1, cv2.LINE_AA)
        # Viewfinder corners around the head: the face has been found.
        x0, y0, x1, y1, arm, thick = 348, 276, 676, 604, 84, 26
        for cx, cy, dx, dy in ((x0, y0, 1, 1), (x1, y0, -1, 1), (x0, y1, 1, -1),
                               (x1, y1, -1, -1)):
            cv2.rectangle(face, (cx, cy), (cx + dx * arm, cy + dy * thick), 255, -1)
            cv2.rectangle(face, (cx, cy), (cx + dx * thick, cy + dy * arm), 255, -1)
    face = np.minimum(face, _erode(inner, 28 if simple else 18))
    # Enlarge about the shield's centre so that it fills the canvas like other app icons.
    grow = cv2.getRotationMatrix2D((512.0, 534.0), 0.0, 1.12)

    def grown(mask: np.ndarray) -> np.ndarray:
        moved = cv2.warpAffine(mask, grow, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
        return np.asarray(moved, np.float32) / 255

    return grown(outer), grown(inner), grown(face)


def render(size: int, palette: Palette) -> np.ndarray:
    """The icon at ``size`` x ``size`` as an RGBA uint8 array."""
    outer, inner, face = layers(simple=size <= SMALL)
    inner = np.minimum(inner, outer)
    accent = np.asarray(palette.accent, np.float32)
    background = np.asarray(palette.background, np.float32)
    accent_cover = (outer - inner) + face
    field_cover = inner - face
    premultiplied = accent_cover[..., None] * accent + field_cover[..., None] * background
    if size != CANVAS:
        premultiplied = cv2.resize(premultiplied, (size, size), interpolation=cv2.INTER_AREA)
        outer = cv2.resize(outer, (size, size), interpolation=cv2.INTER_AREA)
    alpha = np.clip(outer, 0.0, 1.0)
    colour = premultiplied / np.maximum(alpha, 1e-6)[..., None]
    rgba = np.concatenate([colour, alpha[..., None] * 255.0], axis=2)
    rgba[alpha < 1e-4] = 0.0
    return np.clip(np.round(rgba), 0, 255).astype(np.uint8)


def png_bytes(rgba: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA),
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico whose entries are PNG images (Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    directory, images = b"", b""
    for size in sizes:
        data = pngs[size]
        directory += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data),
                                 offset + len(images))
        images += data
    return header + directory + images


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns made of PNG entries."""
    body = b"".join(kind.encode("ascii") + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
                    for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def build(palette: Palette) -> dict[str, bytes]:
    """File name -> contents for every icon file."""
    sizes = sorted({*PNG_SIZES, *ICO_SIZES, *(size for _, size in ICNS_TYPES)})
    pngs = {size: png_bytes(render(size, palette)) for size in sizes}
    files = {f"{BASENAME}_{size}.png": pngs[size] for size in PNG_SIZES}
    files[f"{BASENAME}.ico"] = ico_bytes({size: pngs[size] for size in ICO_SIZES})
    files[f"{BASENAME}.icns"] = icns_bytes(pngs)
    return files


def read_ico(data: bytes) -> dict[int, bytes]:
    """Size -> PNG bytes of each entry of an .ico written by ``ico_bytes``."""
    reserved, kind, count = struct.unpack_from("<HHH", data, 0)
    if reserved != 0 or kind != 1:
        raise ValueError("not an .ico file")
    entries: dict[int, bytes] = {}
    for index in range(count):
        width, _, _, _, _, _, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        entries[width or 256] = data[offset:offset + length]
    return entries


def read_icns(data: bytes) -> dict[str, bytes]:
    """Entry type -> payload of an .icns file."""
    if data[:4] != b"icns" or struct.unpack_from(">I", data, 4)[0] != len(data):
        raise ValueError("not an .icns file")
    entries: dict[str, bytes] = {}
    position = 8
    while position < len(data):
        kind = data[position:position + 4].decode("ascii")
        (length,) = struct.unpack_from(">I", data, position + 4)
        if length < 8:
            raise ValueError(f"bad .icns entry {kind!r}")
        entries[kind] = data[position + 8:position + length]
        position += length
    return entries


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> RGBA array."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise ValueError("not an RGBA PNG")
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


def _png_differs(fresh: bytes, existing: bytes) -> bool:
    new = decode_png(fresh).astype(np.int16)
    old = decode_png(existing).astype(np.int16)
    return old.shape != new.shape or float(np.abs(old - new).mean()) > 1.0


def differs(name: str, fresh: bytes, existing: bytes) -> bool:
    """Whether an existing icon file differs visibly from a fresh render.

    Images are compared by pixels, not bytes, so another OpenCV/zlib build that encodes the
    same picture differently does not count as a change.
    """
    try:
        if name.endswith(".png"):
            return _png_differs(fresh, existing)
        if name.endswith(".ico"):
            new = {str(k): v for k, v in read_ico(fresh).items()}
            old = {str(k): v for k, v in read_ico(existing).items()}
        else:
            new, old = read_icns(fresh), read_icns(existing)
        return sorted(new) != sorted(old) or any(_png_differs(new[k], old[k]) for k in new)
    except ValueError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICONS, help="output folder")
    parser.add_argument("--check", action="store_true",
                        help="compare with the files in --out instead of writing them")
    args = parser.parse_args(argv)
    files = build(load_palette())
    if args.check:
        stale = [name for name, data in files.items()
                 if not (args.out / name).is_file()
                 or differs(name, data, (args.out / name).read_bytes())]
        for name in stale:
            print(f"out of date: {args.out / name}")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
