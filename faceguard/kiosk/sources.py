"""Where the kiosk's frames come from: a camera, a video file, a stream URL, a folder of images,
or the built-in synthetic demo.

Every source yields uint8 RGB frames (H, W, 3). ``read()`` raises :class:`SourceEnded` when a
finite source has no more frames and :class:`SourceError` (a user-facing message) when a source
cannot be opened or stops working. Sources are not thread-safe: one thread opens, reads and
closes each one (the loop's grabber thread).
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.paths import resources_dir
from faceguard.vision.image_io import is_image_file, load_image

log = logging.getLogger(__name__)

SourceKind = Literal["camera", "file", "url", "folder", "demo"]
MAX_FRAME_SIDE = 1280  # larger camera/video frames are downscaled on reading
DEFAULT_FILE_FPS = 25.0
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(FaceGuardError):
    """A frame source cannot be opened, or stopped delivering frames."""


class SourceEnded(Exception):
    """A finite source (video file, image folder, one demo cycle) has no more frames."""


@dataclass(frozen=True)
class SourceSpec:
    """What to read: ``kind`` and its ``target`` (camera index, path or URL)."""

    kind: SourceKind
    target: str = ""

    @classmethod
    def parse(cls, text: str | int) -> SourceSpec:
        """Understand a ``--source`` value: ``demo``, a camera index, a URL, a folder, a file."""
        value = str(text).strip()
        if not value:
            raise SourceError("no video source given")
        if value.lower() == "demo":
            return cls("demo")
        if value.isdigit():
            return cls("camera", value)
        if value.lower().startswith(URL_SCHEMES):
            return cls("url", value)
        path = Path(value).expanduser()
        return cls("folder" if path.is_dir() else "file", str(path))

    @property
    def live(self) -> bool:
        """Cameras and streams run in real time; files, folders and the demo can be paced."""
        return self.kind in ("camera", "url")

    def describe(self) -> str:
        """Short human description (for the status bar and messages)."""
        if self.kind == "demo":
            return "built-in demo"
        if self.kind == "camera":
            return f"camera {self.target}"
        if self.kind == "url":
            return f"stream {_hide_password(self.target)}"
        if self.kind == "folder":
            return f"image folder {Path(self.target).name}"
        return f"video file {Path(self.target).name}"

    def __str__(self) -> str:
        return "demo" if self.kind == "demo" else self.target


def _hide_password(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x``."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.partition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def limit_size(frame: np.ndarray, max_side: int = MAX_FRAME_SIDE) -> np.ndarray:
    """Downscale a frame whose longer side exceeds ``max_side``."""
    longest = max(frame.shape[:2])
    if longest <= max_side:
        return frame
    factor = max_side / longest
    size = (round(frame.shape[1] * factor), round(frame.shape[0] * factor))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class FrameSource(ABC):
    """A stream of RGB frames. Use as a context manager or call open/close."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    @property
    def live(self) -> bool:
        """True for cameras and streams (frames come at their own pace and may freeze)."""
        return self.spec.live

    @property
    def fps(self) -> float | None:
        """Nominal frame rate for pacing a finite source (None: as the device delivers)."""
        return None

    @abstractmethod
    def open(self) -> None:
        """Open the source; SourceError with the reason when it cannot."""

    @abstractmethod
    def read(self) -> np.ndarray:
        """The next RGB frame; SourceEnded at the end, SourceError on failure."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file (safe to call twice)."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class CaptureSource(FrameSource):
    """Camera index, video file or stream URL through OpenCV's VideoCapture."""

    def __init__(self, spec: SourceSpec, *, loop: bool = False,
                 max_side: int = MAX_FRAME_SIDE) -> None:
        if spec.kind not in ("camera", "file", "url"):
            raise ValueError(f"CaptureSource cannot read a {spec.kind} source")
        super().__init__(spec)
        self.loop = loop
        self.max_side = max_side
        self._capture: cv2.VideoCapture | None = None
        self._fps: float | None = None
        self._frames_read = 0

    @property
    def fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        self.close()
        spec = self.spec
        if spec.kind == "file":
            path = Path(spec.target)
            if not path.exists():
                raise SourceError(f"video file {path} does not exist")
            if path.is_dir():
                raise SourceError(f"{path} is a folder, not a video file")
        if spec.live:  # failures are reported in plain words; OpenCV's own warnings are noise
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        capture = cv2.VideoCapture(int(spec.target) if spec.kind == "camera" else spec.target)
        if not capture.isOpened():
            capture.release()
            raise SourceError(self._open_failure())
        self._capture = capture
        self._frames_read = 0
        if spec.kind == "file":
            rate = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self._fps = rate if math.isfinite(rate) and 1.0 <= rate <= 240.0 else DEFAULT_FILE_FPS

    def _open_failure(self) -> str:
        spec = self.spec
        if spec.kind == "camera":
            return (f"no camera found at index {spec.target} (is one connected, and not in use "
                    "by another program?)")
        if spec.kind == "url":
            return f"cannot connect to the stream {_hide_password(spec.target)}"
        return f"{spec.target} cannot be opened as a video (unsupported or damaged file)"

    def read(self) -> np.ndarray:
        if self._capture is None:
            raise SourceError(f"{self.spec.describe()} is not open")
        ok, frame = self._capture.read()
        if not ok or frame is None or frame.size == 0:
            if self.spec.kind == "file":
                if self.loop and self._frames_read > 0:
                    self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    self._frames_read = 0
                    ok, frame = self._capture.read()
                if not ok or frame is None or frame.size == 0:
                    if self._frames_read == 0 and not self.loop:
                        raise SourceError(f"{self.spec.target} has no readable video frames")
                    raise SourceEnded
            else:
                raise SourceError(f"{self.spec.describe()} stopped delivering frames")
        self._frames_read += 1
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(cv2.cvtColor(limit_size(frame, self.max_side),
                                                 cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class FolderSource(FrameSource):
    """A folder of images, each repeated ``frames_per_image`` times (so votes can agree)."""

    def __init__(self, spec: SourceSpec, *, frames_per_image: int = 5, fps: float = 5.0,
                 loop: bool = False, max_side: int = MAX_FRAME_SIDE) -> None:
        if spec.kind != "folder":
            raise ValueError("FolderSource needs a folder source")
        super().__init__(spec)
        self.frames_per_image = max(1, frames_per_image)
        self._fps = fps
        self.loop = loop
        self.max_side = max_side
        self._files: list[Path] = []
        self._position = 0
        self._current: np.ndarray | None = None
        self._repeats_left = 0

    @property
    def fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        folder = Path(self.spec.target)
        if not folder.is_dir():
            raise SourceError(f"image folder {folder} does not exist")
        try:
            self._files = sorted(p for p in folder.iterdir() if is_image_file(p))
        except OSError as error:
            raise SourceError(f"cannot list {folder}: {error.strerror or error}") from error
        if not self._files:
            raise SourceError(f"image folder {folder} has no images")
        self._position = 0
        self._repeats_left = 0

    def read(self) -> np.ndarray:
        if self._repeats_left > 0 and self._current is not None:
            self._repeats_left -= 1
            return self._current
        skipped = 0
        while True:
            if self._position >= len(self._files):
                if not self.loop:
                    raise SourceEnded
                self._position = 0
            path = self._files[self._position]
            self._position += 1
            try:
                image = limit_size(load_image(path), self.max_side)
            except FaceGuardError as error:
                log.warning("skipping %s", error)
                skipped += 1
                if skipped >= len(self._files):
                    raise SourceError(f"no image in {self.spec.target} can be read") from error
                continue
            self._current = image
            self._repeats_left = self.frames_per_image - 1
            return image

    def close(self) -> None:
        self._current = None


# -- the synthetic demo --------------------------------------------------------------------------

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


def make_source(spec: SourceSpec | str, *, loop: bool = False,
                realtime: bool = False) -> FrameSource:
    """The (unopened) source for a spec; ``loop`` repeats files, folders and the demo;
    ``realtime`` lets the demo follow the clock like a camera."""
    if isinstance(spec, str):
        spec = SourceSpec.parse(spec)
    if spec.kind == "demo":  # with a screen replay of the enrolled person (liveness demo)
        from faceguard.kiosk.demo import AttackDemoSource

        return AttackDemoSource(spec, loop=loop, follow_clock=realtime)
    if spec.kind == "folder":
        return FolderSource(spec, loop=loop)
    return CaptureSource(spec, loop=loop)
