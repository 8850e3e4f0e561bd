"""The built-in synthetic demo video: the public-domain demo photos moving across a calm room.

:data:`DEMO_SCRIPT` is the plain cycle (a known person, a gap, a stranger) used by tests and
``write_demo_video``; :mod:`faceguard.kiosk.demo` adds the liveness scene (a screen replay).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.kiosk.sources import FrameSource, SourceEnded, SourceError, SourceSpec
from faceguard.paths import resources_dir
from faceguard.vision.image_io import load_image

DEMO_FPS = 15.0
DEMO_SIZE = (640, 480)  # width, height


@dataclass(frozen=True)
class DemoShot:
    """One part of the demo cycle: a photo (or nobody) moving across the frame."""

    photo: str | None  # file in resources/demo, None for an empty scene
    seconds: float
    scale: tuple[float, float] = (1.0, 1.0)  # start, end (relative to the photo's base scale)
    centre_x: tuple[float, float] = (0.5, 0.5)  # start, end (fraction of the frame width)
    centre_y: tuple[float, float] = (0.5, 0.5)
    light: tuple[float, float] = (1.0, 1.0)  # brightness gain start, end
    angle: tuple[float, float] = (0.0, 0.0)  # degrees


# Detected face sizes in the demo photos, for a base scale giving a ~110 px face at scale 1.0.
DEMO_FACE_PX = {"astronaut.png": 88.0, "grace_hopper.jpg": 184.0}
DEMO_FACE_CENTRE = {"astronaut.png": (224.0, 116.0), "grace_hopper.jpg": (256.0, 225.0)}
DEMO_TARGET_FACE_PX = 110.0
DEMO_KNOWN_PHOTO = "astronaut.png"
DEMO_STRANGER_PHOTO = "grace_hopper.jpg"

DEMO_SCRIPT: tuple[DemoShot, ...] = (
    DemoShot(None, 1.0),
    DemoShot(DEMO_KNOWN_PHOTO, 6.0, scale=(0.9, 1.25), centre_x=(0.36, 0.6),
             centre_y=(0.42, 0.36), light=(0.7, 1.15), angle=(-4.0, 3.0)),
    DemoShot(None, 1.5),
    DemoShot(DEMO_STRANGER_PHOTO, 6.0, scale=(1.2, 0.9), centre_x=(0.62, 0.42),
             centre_y=(0.36, 0.42), light=(1.1, 0.75), angle=(3.0, -3.0)),
    DemoShot(None, 1.0),
)


def _background(width: int, height: int) -> np.ndarray:
    """A calm room: a vertical gradient, a door frame and a floor line."""
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top, bottom = np.array([58, 66, 78], np.float32), np.array([28, 32, 38], np.float32)
    image = (top * (1 - rows[..., None]) + bottom * rows[..., None]) * np.ones((1, width, 1))
    image = image.astype(np.uint8)
    cv2.rectangle(image, (int(width * 0.06), int(height * 0.12)),
                  (int(width * 0.26), int(height * 0.95)), (70, 60, 52), -1)
    cv2.rectangle(image, (int(width * 0.06), int(height * 0.12)),
                  (int(width * 0.26), int(height * 0.95)), (90, 80, 70), 3)
    cv2.line(image, (0, int(height * 0.95)), (width, int(height * 0.95)), (48, 52, 58), 2)
    return image


class DemoSource(FrameSource):
    """Synthetic video from the public-domain demo photos: a known person, a gap, a stranger.

    Frames are a pure function of the frame number (pans, zooms, slight rotation, lighting
    changes and sensor noise), so runs are reproducible. ``loop`` repeats the cycle forever.
    With ``follow_clock`` the frame number follows the wall clock, like a camera: a slow
    machine skips frames instead of playing the demo in slow motion.
    """

    def __init__(self, spec: SourceSpec | None = None, *, loop: bool = True,
                 fps: float = DEMO_FPS, size: tuple[int, int] = DEMO_SIZE,
                 script: tuple[DemoShot, ...] = DEMO_SCRIPT,
                 demo_folder: Path | None = None, follow_clock: bool = False) -> None:
        super().__init__(spec or SourceSpec("demo"))
        self.loop = loop
        self.follow_clock = follow_clock
        self._started = 0.0
        self._noise: list[np.ndarray] = []
        self._fps = fps
        self.size = size
        self.script = script
        self.folder = demo_folder or resources_dir() / "demo"
        self._photos: dict[str, np.ndarray] = {}
        self._background: np.ndarray | None = None
        self._index = 0
        self._counts = [max(1, round(shot.seconds * fps)) for shot in script]
        # face size and centre per photo (a subclass may add photos it makes itself)
        self.face_px: dict[str, float] = dict(DEMO_FACE_PX)
        self.face_centre: dict[str, tuple[float, float]] = dict(DEMO_FACE_CENTRE)

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def cycle_frames(self) -> int:
        """Frames in one pass through the script."""
        return sum(self._counts)

    def open(self) -> None:
        for shot in self.script:
            if shot.photo and shot.photo not in self._photos:
                try:
                    self._photos[shot.photo] = load_image(self.folder / shot.photo)
                except FaceGuardError as error:
                    raise SourceError(f"the demo photos are missing: {error}") from error
        self._background = _background(*self.size)
        self._index = 0
        self._started = time.monotonic()
        width, height = self.size
        rng = np.random.default_rng(2024)
        self._noise = [rng.normal(0.0, 3.0, (height, width, 3)).astype(np.int16)
                       for _ in range(4)]

    def shot_at(self, index: int) -> tuple[DemoShot, float]:
        """The shot shown at frame ``index`` of a cycle and its progress 0..1."""
        index %= self.cycle_frames
        for shot, count in zip(self.script, self._counts, strict=True):
            if index < count:
                return shot, index / max(1, count - 1)
            index -= count
        raise AssertionError("unreachable")

    def render(self, index: int) -> np.ndarray:
        """Frame number ``index`` (any number; the script repeats)."""
        if self._background is None:
            self.open()
        assert self._background is not None
        shot, t = self.shot_at(index)
        frame = self._background.copy()
        if shot.photo is not None:
            frame = self._place(frame, shot, t)
        noise = self._noise[index % len(self._noise)]
        return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    def _place(self, frame: np.ndarray, shot: DemoShot, t: float) -> np.ndarray:
        assert shot.photo is not None
        photo = self._photos[shot.photo]
        # Smooth in-out motion between the start and end values.
        ease = 0.5 - 0.5 * math.cos(math.pi * t)

        def lerp(pair: tuple[float, float]) -> float:
            return pair[0] + (pair[1] - pair[0]) * ease

        width, height = self.size
        base = DEMO_TARGET_FACE_PX / self.face_px.get(shot.photo, DEMO_TARGET_FACE_PX)
        scale = base * lerp(shot.scale)
        ph, pw = photo.shape[:2]
        face_x, face_y = self.face_centre.get(shot.photo, (pw / 2, ph / 2))
        # Rotate and scale about the face, then move the face to the shot's centre point.
        matrix = cv2.getRotationMatrix2D((face_x, face_y), lerp(shot.angle), scale)
        matrix[0, 2] += lerp(shot.centre_x) * width - face_x
        matrix[1, 2] += lerp(shot.centre_y) * height - face_y
        warped = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.full((ph, pw), 255, np.uint8), matrix, (width, height))
        # Lighting: overall gain plus a soft side light that moves with the shot.
        gain = lerp(shot.light)
        ramp = np.linspace(0.85, 1.15, width, dtype=np.float32)
        if ease > 0.5:
            ramp = ramp[::-1]
        lit = warped.astype(np.float32) * gain * ramp[None, :, None]
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        out = frame.astype(np.float32) * (1 - alpha) + np.clip(lit, 0, 255) * alpha
        return out.astype(np.uint8)

    def read(self) -> np.ndarray:
        if self._background is None:
            raise SourceError("the demo source is not open")
        if self.follow_clock:
            due = int((time.monotonic() - self._started) * (self._fps or DEMO_FPS))
            self._index = max(self._index, due)
        if not self.loop and self._index >= self.cycle_frames:
            raise SourceEnded
        frame = self.render(self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._background = None
