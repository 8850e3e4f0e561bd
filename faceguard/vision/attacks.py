"""Synthetic presentation attacks made from live face photos (for measurement and the demo).

Two kinds, each a pure function of the photo and a seed:

- **print** (a photo printed and held up to the camera): the photo is resampled to a printer's
  resolution, halftoned (a rotated dot screen per ink), given paper texture and a paper-white
  / ink-black range with a warm colour cast, held slightly tilted in front of a plain
  background (its white border visible), re-photographed out of focus, with sensor noise and
  JPEG compression.
- **screen** (a photo shown on a phone or monitor): the photo is shown with a display gamma
  and a cool white point, a pixel grid that beats with the camera's sampling (moire), a dark
  bezel round the screen, a soft reflection of a light across the glass, then re-photographed
  with blur, noise and JPEG.

These are synthetic: they imitate a few cues of real attacks and are **no substitute for a
certified ISO/IEC 30107-3 test** with real printed, replayed and mask attacks; nothing
measured with them claims conformance. ``tools/make_attacks.py`` writes them for a folder
(:mod:`faceguard.evaluation.attacks`); the built-in demo shows one (faceguard.kiosk.demo).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ATTACK_KINDS = ("print", "screen")
SYNTHETIC_NOTE = ("attacks made by faceguard.evaluation.attacks are synthetic, no substitute "
                  "for a certified ISO/IEC 30107-3 test; no conformance is claimed")

def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """RGB uint8 through a JPEG round trip."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError("JPEG decoding failed")
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


def _recapture(image: np.ndarray, rng: np.random.Generator, blur: float) -> np.ndarray:
    """The camera that re-photographs the attack: defocus, sensor noise, JPEG."""
    out = np.asarray(image, np.float32)
    if blur > 0:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), blur), np.float32)
    out += rng.normal(0.0, rng.uniform(2.0, 5.0), out.shape).astype(np.float32)
    return _jpeg(np.clip(out, 0, 255).astype(np.uint8), int(rng.integers(70, 92)))


def _hold(content: np.ndarray, rng: np.random.Generator, background: tuple[float, float, float],
          shrink: tuple[float, float], border: float, border_colour: tuple[float, float, float]
          ) -> np.ndarray:
    """The attack medium held in front of a plain background, slightly tilted, same size."""
    h, w = content.shape[:2]
    pad = max(1, round(border * min(h, w)))
    framed = cv2.copyMakeBorder(content, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                value=tuple(int(c) for c in border_colour))
    fh, fw = framed.shape[:2]
    scale = rng.uniform(*shrink) * min(w / fw, h / fh)
    angle = rng.uniform(-6.0, 6.0)
    matrix = cv2.getRotationMatrix2D((fw / 2, fh / 2), angle, scale)
    matrix[0, 2] += w / 2 - fw / 2 + rng.uniform(-0.03, 0.03) * w
    matrix[1, 2] += h / 2 - fh / 2 + rng.uniform(-0.03, 0.03) * h
    # a little perspective: the medium is not quite parallel to the camera
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    dst = cv2.transform(src[None], matrix)[0]
    dst += rng.uniform(-0.02, 0.02, dst.shape).astype(np.float32) * min(w, h)
    warp = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    backdrop = np.empty((h, w, 3), np.float32)
    backdrop[:] = background
    rows = np.linspace(0.9, 1.1, h, dtype=np.float32)[:, None, None]
    backdrop *= rows
    moved = cv2.warpPerspective(framed.astype(np.float32), warp, (w, h),
                                flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((fh, fw), np.float32), warp, (w, h))[..., None]
    return np.clip(backdrop * (1 - mask) + moved * mask, 0, 255).astype(np.uint8)


def _halftone(channel: np.ndarray, period: float, angle_deg: float) -> np.ndarray:
    """Amplitude-modulated dot screen of one ink (0..1 coverage in, 0..1 ink out)."""
    h, w = channel.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(angle_deg)
    u = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period)
    v = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period)
    screen = (np.cos(u) * np.cos(v) + 1.0) / 2.0  # 0..1 dot profile
    soft = 0.15
    return np.clip((channel - screen) / soft + 0.5, 0.0, 1.0)


def print_attack(image_rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A re-photographed print of an RGB uint8 photo (same size as the photo)."""
    rng = np.random.default_rng(seed)
    h, w = image_rgb.shape[:2]
    # printer resolution: resample down and up (loses the camera's fine texture)
    factor = rng.uniform(0.45, 0.7)
    small = cv2.resize(image_rgb, (max(8, int(w * factor)), max(8, int(h * factor))),
                       interpolation=cv2.INTER_AREA)
    photo = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    # CMY halftone, one rotated screen per ink
    period = rng.uniform(2.6, 3.6)
    inks = [_halftone(1.0 - photo[..., c], period, angle)
            for c, angle in zip((0, 1, 2), (15.0, 75.0, 0.0), strict=True)]
    printed = 1.0 - np.stack(inks, axis=-1) * 0.85
    # the screen is finer than the camera sees: average it the way the optics would
    printed = np.asarray(cv2.GaussianBlur(printed, (0, 0), period * 0.35), np.float64)
    # paper: white is not white, black is not black, a warm cast, fibre texture
    paper_white = np.array([0.93, 0.90, 0.82], np.float32) * rng.uniform(0.9, 1.0)
    ink_black = rng.uniform(0.08, 0.16)
    tone = ink_black + printed * (paper_white - ink_black)
    grain = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    fibres = cv2.GaussianBlur(grain, (0, 0), 1.2) * 0.04 + \
        cv2.GaussianBlur(grain, (0, 0), 8.0) * 0.25
    tone *= (1.0 + fibres)[..., None]
    content = np.clip(tone * 255.0, 0, 255).astype(np.uint8)
    held = _hold(content, rng, background=tuple(rng.uniform(60, 140, 3)), shrink=(0.8, 0.95),
                 border=rng.uniform(0.03, 0.07), border_colour=tuple(paper_white * 235))
    return _recapture(held, rng, blur=rng.uniform(0.6, 1.4))


def screen_attack(image_rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A re-photographed screen replay of an RGB uint8 photo (same size as the photo)."""
    rng = np.random.default_rng(seed)
    h, w = image_rgb.shape[:2]
    photo = image_rgb.astype(np.float32) / 255.0
    # display gamma and a cool white point, a slightly lifted black
    gamma = rng.uniform(0.75, 1.35)
    white = np.array([0.92, 0.97, 1.0], np.float32) * rng.uniform(0.9, 1.0)
    shown = 0.04 + (photo ** gamma) * (white - 0.04)
    # the pixel grid (RGB stripes) beating with the camera's sampling: moire
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(rng.uniform(-8.0, 8.0))
    period = rng.uniform(2.2, 4.5)
    phase = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period)
    stripes = np.stack([np.cos(phase + k * 2 * math.pi / 3) for k in range(3)], axis=-1)
    beat_period = rng.uniform(10.0, 30.0)
    beat = np.cos((xx * math.sin(a) - yy * math.cos(a)) * (2 * math.pi / beat_period))
    shown *= 1.0 + 0.10 * stripes + 0.06 * beat[..., None]
    content = np.clip(shown * 255.0, 0, 255).astype(np.uint8)
    bezel = float(rng.uniform(5, 25))
    held = _hold(content, rng, background=tuple(rng.uniform(40, 120, 3)), shrink=(0.78, 0.92),
                 border=rng.uniform(0.05, 0.1), border_colour=(bezel, bezel, bezel))
    # a soft reflection of a light across the glass
    out = held.astype(np.float32)
    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.0, 0.5) * h
    radius = rng.uniform(0.25, 0.6) * max(h, w)
    glow = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2)))
    out += (glow * rng.uniform(25, 60))[..., None]
    return _recapture(np.clip(out, 0, 255).astype(np.uint8), rng, blur=rng.uniform(0.5, 1.2))


def make_attack(image_rgb: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """One synthetic attack of ``kind`` ("print" or "screen") from a live RGB photo."""
    if kind == "print":
        return print_attack(image_rgb, seed)
    if kind == "screen":
        return screen_attack(image_rgb, seed)
    raise ValueError(f"unknown attack kind {kind!r} (one of {', '.join(ATTACK_KINDS)})")
