"""The kiosk loop: read frames, run the pipeline, watch the source, reopen it when it fails.

A grabber thread owns the source (opens, reads, closes it) and puts each frame into a one-frame
slot. In *live* mode (cameras, streams, and files played in real time) a new frame replaces an
unprocessed one, so the newest frame wins and a slow machine drops frames instead of queueing
them. In *lossless* mode (files for scripts and tests) the grabber waits until the frame was
taken, so every frame is processed.

The loop thread takes frames from the slot and runs the pipeline. A watchdog in the loop
notices a source that delivers nothing for ``stale_after_s`` (2 s), reports it, abandons the
grabber (a hung ``read()`` cannot block the loop) and reopens the source with exponential
back-off. A live source sending bit-identical frames for that long counts as frozen.

The same loop serves ``faceguard run --headless`` and the window's worker thread; what it
produces goes to :class:`LoopHooks` callbacks.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.pipeline import FrameResult
from faceguard.kiosk.sources import FrameSource, SourceEnded, SourceError

log = logging.getLogger(__name__)

STALE_AFTER_S = 2.0
OPEN_TIMEOUT_S = 10.0
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
STATS_EVERY_S = 1.0
HOUSEKEEPING_FIRST_S = 600.0  # the library was just checked at open
HOUSEKEEPING_EVERY_S = 3600.0  # how often the loop asks whether the daily check is due

SourceState = Literal["opening", "live", "stalled", "reconnecting", "failed", "ended",
                      "stopped"]


@dataclass(frozen=True)
class SourceStatus:
    """The state of the source, with a message a person can read."""

    state: SourceState
    message: str
    description: str
    retry_in_s: float | None = None


@dataclass(frozen=True)
class LoopStats:
    """Throughput numbers for the status bar."""

    fps: float  # processed frames per second (last interval)
    latency_ms: float  # mean pipeline time per frame (last interval)
    dropped: int  # frames replaced before they were processed (total)
    processed: int  # frames processed (total)
    source_fps: float  # frames delivered by the source per second (last interval)


@dataclass
class LoopHooks:
    """Callbacks for what the loop produces (called from the loop thread)."""

    frame: Callable[[np.ndarray, FrameResult], None] = lambda frame, result: None
    event: Callable[[KioskEvent], None] = lambda event: None
    status: Callable[[SourceStatus], None] = lambda status: None
    stats: Callable[[LoopStats], None] = lambda stats: None


@dataclass
class LoopSummary:
    """What a finished run did."""

    frames: int = 0
    events: list[KioskEvent] = field(default_factory=list)
    faults: int = 0
    dropped: int = 0
    ended: bool = False
    error: str | None = None


class FrameProcessor(Protocol):
    """What the loop runs on each frame (:class:`KioskPipeline` in the product)."""

    def process(self, frame: np.ndarray) -> FrameResult:
        """Process one RGB frame."""
        ...


class FrameSlot:
    """A one-frame hand-over between the grabber and the loop (newest frame wins)."""

    def __init__(self, lossless: bool) -> None:
        self.lossless = lossless
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._taken = 0
        self.dropped = 0
        self.delivered = 0
        self.last_activity = time.monotonic()
        self.ended = False
        self.error: str | None = None
        self.abandoned = False

    def put(self, frame: np.ndarray) -> bool:
        """Offer a frame; False when the slot was abandoned (the grabber should stop)."""
        with self._cond:
            if self.lossless:
                while self._frame is not None and not self.abandoned:
                    self._cond.wait(0.1)
            if self.abandoned:
                return False
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._seq += 1
            self.delivered += 1
            self.last_activity = time.monotonic()
            self._cond.notify_all()
            return True

    def finish(self, error: str | None = None) -> None:
        """The grabber has stopped: the source ended (no error) or failed."""
        with self._cond:
            self.ended = error is None
            self.error = error
            self._cond.notify_all()

    def take(self, timeout: float) -> np.ndarray | None:
        """The newest unprocessed frame, waiting up to ``timeout`` seconds."""
        with self._cond:
            if self._frame is None and not self.ended and self.error is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.last_activity = time.monotonic()
                self._cond.notify_all()
            return frame

    def touch(self) -> None:
        """Restart the watchdog's clock (the source has just opened)."""
        with self._cond:
            self.last_activity = time.monotonic()

    def abandon(self) -> None:
        """Tell the grabber to stop at its next frame."""
        with self._cond:
            self.abandoned = True
            self._frame = None
            self._cond.notify_all()


class Grabber(threading.Thread):
    """Opens a source and reads it into a slot until it ends, fails or is abandoned."""

    def __init__(self, source: FrameSource, slot: FrameSlot, *, pace: bool) -> None:
        super().__init__(name="faceguard-grabber", daemon=True)
        self.source = source
        self.slot = slot
        self.pace = pace
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            self.source.open()
        except SourceError as error:
            self.slot.finish(str(error))
            return
        except Exception as error:  # a broken backend must not kill the app
            log.exception("opening %s failed", self.source.spec.describe())
            self.slot.finish(f"{self.source.spec.describe()} cannot be opened: {error}")
            return
        self.slot.touch()
        self.opened.set()
        interval = 1.0 / self.source.fps if self.pace and self.source.fps else 0.0
        next_due = time.monotonic()
        try:
            while not self.slot.abandoned:
                try:
                    frame = self.source.read()
                except SourceEnded:
                    self.slot.finish()
                    return
                except SourceError as error:
                    self.slot.finish(str(error))
                    return
                if interval:
                    next_due += interval
                    delay = next_due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        next_due = time.monotonic()  # running late: do not try to catch up
                if not self.slot.put(frame):
                    return
        except Exception as error:  # a broken backend must not kill the app
            log.exception("reading %s failed", self.source.spec.describe())
            self.slot.finish(f"{self.source.spec.describe()} failed: {error}")
        finally:
            self.source.close()


class KioskLoop:
    """Runs the pipeline over a source until it ends, ``max_frames`` is reached or ``stop()``.

    ``open_source`` builds a fresh (unopened) source for each (re)connection. ``realtime``
    paces finite sources at their frame rate and lets frames drop; otherwise finite sources
    are read losslessly. Live sources (cameras, streams) are always real time.
    """

    def __init__(self, open_source: Callable[[], FrameSource], pipeline: FrameProcessor,
                 hooks: LoopHooks | None = None, *, realtime: bool = True,
                 max_frames: int | None = None, stale_after_s: float = STALE_AFTER_S,
                 open_timeout_s: float = OPEN_TIMEOUT_S, backoff_start_s: float = BACKOFF_START_S,
                 backoff_max_s: float = BACKOFF_MAX_S, retry_first_open: bool = True,
                 housekeeping: Callable[[], object] | None = None) -> None:
        self.open_source = open_source
        self.pipeline = pipeline
        self.hooks = hooks or LoopHooks()
        self.realtime = realtime
        self.max_frames = max_frames
        self.stale_after_s = stale_after_s
        self.open_timeout_s = open_timeout_s
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.retry_first_open = retry_first_open
        # The daily library check and backup (the pipeline's, by default), in its own thread.
        self.housekeeping = housekeeping or getattr(pipeline, "housekeeping", None)
        self._stop = threading.Event()
        self._ended = threading.Event()  # stop() or the end of run(): housekeeping ends too
        self.summary = LoopSummary()

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe; returns at once)."""
        self._stop.set()
        self._ended.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> LoopSummary:
        """Run until done; returns the summary (also kept in ``self.summary``)."""
        self._ended.clear()
        housekeeper = None
        if self.housekeeping is not None:
            housekeeper = threading.Thread(target=self._housekeep, name="faceguard-housekeeping",
                                           daemon=True)
            housekeeper.start()
        try:
            return self._run_sources()
        finally:
            # the housekeeping thread ends with the loop (a check or backup under way is
            # finished first), so it never outlives the pipeline and library it works on
            self._ended.set()
            if housekeeper is not None:
                housekeeper.join()

    def _run_sources(self) -> LoopSummary:
        """Open the source, consume it, retry a live one that fails; until done or stopped."""
        backoff = self.backoff_start_s
        ever_live = False
        while not self._stop.is_set():
            source = self.open_source()
            describe = source.spec.describe()
            live = source.live
            slot = FrameSlot(lossless=not live and not self.realtime)
            grabber = Grabber(source, slot, pace=self.realtime and not live)
            self.hooks.status(SourceStatus("opening", f"opening {describe}", describe))
            grabber.start()
            fault = self._consume(slot, grabber, describe, live)
            slot.abandon()
            self.summary.dropped += slot.dropped
            if fault is None:  # ended, stopped or reached max_frames
                break
            self.summary.faults += 1
            ever_live = ever_live or slot.delivered > 0
            if not live or (not ever_live and not self.retry_first_open):
                # Files, folders and the demo are not retried (a retry would replay them); nor
                # is a first open of a camera when the caller asked so (scripts).
                self.summary.error = fault
                self.hooks.status(SourceStatus("failed", fault, describe))
                return self.summary
            if slot.delivered > 0:
                backoff = self.backoff_start_s
            self.hooks.status(SourceStatus("reconnecting", f"{fault}; retrying in "
                                           f"{backoff:.0f} s", describe, backoff))
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.backoff_max_s)
        if self._stop.is_set():
            self.hooks.status(SourceStatus("stopped", "stopped", ""))
        return self.summary

    def _housekeep(self) -> None:
        """Call the housekeeping job now and then until the loop stops; it never stops the
        loop (a failure is logged)."""
        wait = HOUSEKEEPING_FIRST_S
        while not self._ended.wait(wait) and self.housekeeping is not None:
            wait = HOUSEKEEPING_EVERY_S
            try:
                self.housekeeping()
            except Exception:
                log.exception("library housekeeping failed")

    def _consume(self, slot: FrameSlot, grabber: Grabber, describe: str,
                 live: bool) -> str | None:
        """Process frames from one connection; returns a fault message, or None when done."""
        announced = False
        last_digest: int | None = None
        same_since = time.monotonic()
        interval_start = time.monotonic()
        interval_frames = 0
        interval_latency = 0.0
        delivered_at_start = 0
        while not self._stop.is_set():
            frame = slot.take(0.1)
            now = time.monotonic()
            if frame is None:
                if slot.error is not None:
                    return slot.error
                if slot.ended:
                    self.summary.ended = True
                    self.hooks.status(SourceStatus("ended", f"{describe} ended", describe))
                    return None
                limit = self.stale_after_s if grabber.opened.is_set() else self.open_timeout_s
                if now - slot.last_activity > limit:
                    if grabber.opened.is_set():
                        return f"{describe} stopped delivering frames"
                    return f"{describe} did not answer within {limit:.0f} s"
                continue
            if not announced:
                announced = True
                self.hooks.status(SourceStatus("live", describe, describe))
            if live:
                digest = zlib.crc32(np.ascontiguousarray(frame[::8, ::8]).tobytes())
                if digest != last_digest:
                    last_digest, same_since = digest, now
                elif now - same_since > self.stale_after_s:
                    return f"{describe} is sending the same frame over and over (frozen)"
            try:
                result = self.pipeline.process(frame)
            except FaceGuardError as error:
                log.warning("frame not processed: %s", error)
                self.hooks.status(SourceStatus("live", f"frame not processed: {error}",
                                               describe))
                continue
            self.summary.frames += 1
            interval_frames += 1
            interval_latency += result.latency_ms
            if result.event is not None:
                self.summary.events.append(result.event)
                self.hooks.event(result.event)
            self.hooks.frame(frame, result)
            if now - interval_start >= STATS_EVERY_S:
                elapsed = now - interval_start
                self.hooks.stats(LoopStats(
                    interval_frames / elapsed, interval_latency / max(1, interval_frames),
                    self.summary.dropped + slot.dropped, self.summary.frames,
                    (slot.delivered - delivered_at_start) / elapsed))
                interval_start, interval_frames, interval_latency = now, 0, 0.0
                delivered_at_start = slot.delivered
            if self.max_frames is not None and self.summary.frames >= self.max_frames:
                return None
        return None
