"""Where the kiosk's frames come from: what a source is (:class:`SourceSpec`, :class:`FrameSource`)
and :func:`make_source`, which opens the right one: a camera, a video file or a stream URL
(:mod:`faceguard.kiosk.capture_source`), a folder of images (:mod:`faceguard.kiosk.folder_source`)
or the built-in synthetic demo (:mod:`faceguard.kiosk.demo_source`, with the liveness scene of
:mod:`faceguard.kiosk.demo`).

Every source yields uint8 RGB frames (H, W, 3). ``read()`` raises :class:`SourceEnded` when a
finite source has no more frames and :class:`SourceError` (a user-facing message) when a source
cannot be opened or stops working. Sources are not thread-safe: one thread opens, reads and
closes each one (the loop's grabber thread).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np

from faceguard.errors import FaceGuardError

SourceKind = Literal["camera", "file", "url", "folder", "demo"]
MAX_FRAME_SIDE = 1280  # larger camera/video frames are downscaled on reading
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
            return f"stream {hide_password(self.target)}"
        if self.kind == "folder":
            return f"image folder {Path(self.target).name}"
        return f"video file {Path(self.target).name}"

    def __str__(self) -> str:
        return "demo" if self.kind == "demo" else self.target


def hide_password(url: str) -> str:
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


def make_source(spec: SourceSpec | str, *, loop: bool = False,
                realtime: bool = False) -> FrameSource:
    """The (unopened) source for a spec; ``loop`` repeats files, folders and the demo;
    ``realtime`` lets the demo follow the clock like a camera."""
    if isinstance(spec, str):
        spec = SourceSpec.parse(spec)
    # The concrete sources build on this module, so they are imported here.
    if spec.kind == "demo":  # with a screen replay of the enrolled person (liveness demo)
        from faceguard.kiosk.demo import AttackDemoSource

        return AttackDemoSource(spec, loop=loop, follow_clock=realtime)
    if spec.kind == "folder":
        from faceguard.kiosk.folder_source import FolderSource

        return FolderSource(spec, loop=loop)
    from faceguard.kiosk.capture_source import CaptureSource

    return CaptureSource(spec, loop=loop)
