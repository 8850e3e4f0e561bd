"""Frames from a camera index, a video file or a stream URL, through OpenCV's VideoCapture."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from faceguard.kiosk.sources import (
    MAX_FRAME_SIDE,
    FrameSource,
    SourceEnded,
    SourceError,
    SourceSpec,
    hide_password,
    limit_size,
)

DEFAULT_FILE_FPS = 25.0  # a video file that states no usable frame rate is paced at this


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
            return f"cannot connect to the stream {hide_password(spec.target)}"
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
