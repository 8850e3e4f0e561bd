"""The live worker: the kiosk loop in a worker thread, its results turned into Qt signals.

Frames leave the worker as *copied* QImages, so the GUI never shares memory with the loop. The
display takes only the newest frame: while the GUI has not picked up the previous frame, new
frames are processed but not sent (``frames_skipped`` counts them); events are never skipped.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QImage

from faceguard.gui.tasks import Worker
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.loop import STALE_AFTER_S, KioskLoop, LoopHooks, LoopStats, SourceStatus
from faceguard.kiosk.pipeline import FrameResult, KioskPipeline
from faceguard.kiosk.sources import FrameSource, SourceSpec, make_source


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
        self.pipeline = pipeline
        self.spec = spec
        self.realtime = realtime
        self.loop_source = loop_source
        self.max_frames = max_frames
        self.stale_after_s = stale_after_s
        self.throttle_display = throttle_display
        self.frames_skipped = 0
        self._display_free = threading.Event()
        self._display_free.set()
        self._loop: KioskLoop | None = None
        self._loop_lock = threading.Lock()

    def make_source(self) -> FrameSource:
        return make_source(self.spec, loop=self.loop_source, realtime=self.realtime)

    def work(self) -> None:
        hooks = LoopHooks(frame=self._on_frame, event=self._on_event,
                          status=self._on_status, stats=self._on_stats)
        loop = KioskLoop(self.make_source, self.pipeline, hooks, realtime=self.realtime,
                         max_frames=self.max_frames, stale_after_s=self.stale_after_s)
        with self._loop_lock:
            self._loop = loop
            if self.cancelled:
                return
        summary = loop.run()
        if summary.error:
            self.failed.emit(summary.error)

    def cancel(self) -> None:
        super().cancel()
        with self._loop_lock:
            if self._loop is not None:
                self._loop.stop()

    def frame_taken(self) -> None:
        """The GUI has taken the last frame; the next one may be sent (any thread)."""
        self._display_free.set()

    def _on_frame(self, frame: np.ndarray, result: FrameResult) -> None:
        if self.throttle_display and not self._display_free.is_set():
            self.frames_skipped += 1
            return
        self._display_free.clear()
        self.frame_ready.emit(to_qimage(frame), result)

    def _on_event(self, event: KioskEvent) -> None:
        self.event_logged.emit(event)

    def _on_status(self, status: SourceStatus) -> None:
        self.source_status.emit(status)

    def _on_stats(self, stats: LoopStats) -> None:
        self.stats.emit(stats)


def to_rgb_array(image: QImage) -> np.ndarray:
    """A QImage as a new RGB uint8 array (H, W, 3)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, :width * 3].reshape(height, width, 3).copy()
