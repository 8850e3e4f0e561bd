"""The live worker: the kiosk loop in a worker thread, its results turned into Qt signals.

Frames leave the worker as *copied* QImages, so the GUI never shares memory with the loop. The
display takes only the newest frame: while the GUI has not picked up the previous frame, new
frames are processed but not sent (``frames_skipped`` counts them); events are never skipped.
"""

from __future__ import annotations

import threading
from functools import partial

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QImage

from faceguard.gui.tasks import Worker
from faceguard.kiosk.loop import STALE_AFTER_S, KioskLoop, LoopHooks
from faceguard.kiosk.pipeline import FrameResult, KioskPipeline
from faceguard.kiosk.sources import SourceSpec, make_source


def to_qimage(frame: np.ndarray) -> QImage:
    """A deep copy of an RGB uint8 frame as a QImage."""
    rgb = np.ascontiguousarray(frame)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, int(rgb.strides[0]), QImage.Format.Format_RGB888)
    return image.copy()


class LiveWorker(Worker):
    """Runs :class:`KioskLoop` over a source. Thread-safe controls: cancel, frame_taken."""

    frame_ready = Signal(QImage, object)  # copied frame, FrameResult
    event_logged = Signal(object)  # KioskEvent
    source_status = Signal(object)  # SourceStatus
    stats = Signal(object)  # LoopStats

    def __init__(self, pipeline: KioskPipeline, spec: SourceSpec, *, realtime: bool = True,
                 loop_source: bool = True, max_frames: int | None = None,
                 stale_after_s: float = STALE_AFTER_S, throttle_display: bool = True) -> None:
        super().__init__()
        self.throttle_display = throttle_display
        self.frames_skipped = 0
        self._display_free = threading.Event()
        self._display_free.set()
        hooks = LoopHooks(frame=self._on_frame, event=self.event_logged.emit,
                          status=self.source_status.emit, stats=self.stats.emit)
        self.loop = KioskLoop(partial(make_source, spec, loop=loop_source, realtime=realtime),
                              pipeline, hooks, realtime=realtime, max_frames=max_frames,
                              stale_after_s=stale_after_s)

    def work(self) -> None:
        if self.cancelled:
            return
        summary = self.loop.run()
        if summary.error:
            self.failed.emit(summary.error)

    def cancel(self) -> None:
        super().cancel()
        self.loop.stop()  # thread-safe; a loop not yet running ends before its first frame

    def frame_taken(self) -> None:
        """The GUI has taken the last frame; the next one may be sent (any thread)."""
        self._display_free.set()

    def _on_frame(self, frame: np.ndarray, result: FrameResult) -> None:
        if self.throttle_display and not self._display_free.is_set():
            self.frames_skipped += 1
            return
        self._display_free.clear()
        self.frame_ready.emit(to_qimage(frame), result)


def to_rgb_array(image: QImage) -> np.ndarray:
    """A QImage as a new RGB uint8 array (H, W, 3)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, :width * 3].reshape(height, width, 3).copy()
