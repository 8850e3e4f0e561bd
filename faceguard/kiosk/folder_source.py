"""Frames from a folder of images, each shown for a few frames so the kiosk's votes can agree."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.kiosk.sources import (
    MAX_FRAME_SIDE,
    FrameSource,
    SourceEnded,
    SourceError,
    SourceSpec,
    limit_size,
)
from faceguard.vision.image_io import is_image_file, load_image

log = logging.getLogger(__name__)


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
