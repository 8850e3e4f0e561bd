"""``faceguard soak --minutes N``: run the kiosk window on the demo for N minutes and report.

Every ``every_s`` seconds one JSON line goes to stdout: elapsed time, frames processed and
painted, events, resident memory, the GUI thread's largest stall in that interval and the
reference count of ``None`` (which a broken Qt binding lowers on CPython 3.11). The last line
is a summary: totals, the memory curve (first, last, peak, and the slope over the second half,
in MB per hour) and the largest stall over the whole run. The exit code is 0 when the
interpreter stayed healthy (``None``'s count did not fall) and 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer

from faceguard.gui.main_window import MainWindow

STALL_PROBE_MS = 10
# A healthy window moves None's count by a few hundred either way; PySide6 6.12 on CPython 3.11
# lowers it by ~450 a second of live video until it reaches 0 (~16k at start) and aborts.
NONE_DROP_LIMIT = 2_000


def resident_mb() -> float:
    """This process's resident memory in MB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


class StallMonitor(QObject):
    """Measures how late a 10 ms timer on the GUI thread fires: the GUI's stalls."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.interval_max_ms = 0.0
        self.overall_max_ms = 0.0
        self._last_ms = 0.0

    def start(self) -> None:
        self._clock.start()
        self._last_ms = 0.0
        self._timer.start(STALL_PROBE_MS)

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed() / 1e6
        gap = now - self._last_ms
        self._last_ms = now
        self.interval_max_ms = max(self.interval_max_ms, gap)
        self.overall_max_ms = max(self.overall_max_ms, gap)

    def take_interval(self) -> float:
        """The largest gap since the last call (and reset it)."""
        value, self.interval_max_ms = self.interval_max_ms, 0.0
        return value


@dataclass
class SoakSample:
    """One line of the soak's time series."""

    elapsed_s: float
    frames_processed: int
    frames_painted: int
    events: int
    rss_mb: float
    max_stall_ms: float
    none_refcount: int


def memory_slope_mb_per_hour(samples: list[SoakSample]) -> float:
    """Least-squares slope of RSS over the second half of the run (warm-up excluded)."""
    tail = samples[len(samples) // 2:]
    if len(tail) < 2:
        return 0.0
    xs = [sample.elapsed_s / 3600 for sample in tail]
    ys = [sample.rss_mb for sample in tail]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


class SoakRun(QObject):
    """Samples a running :class:`MainWindow` and closes it after ``minutes``."""

    def __init__(self, window: MainWindow, minutes: float, *, every_s: float = 30.0,
                 out: TextIO | None = None, quit_app: Callable[[], None] | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.duration_s = minutes * 60
        self.every_s = every_s
        self.out = out if out is not None else sys.stdout
        self.quit_app = quit_app or window.close
        self.samples: list[SoakSample] = []
        self.stalls = StallMonitor(self)
        self._started = time.monotonic()
        self._none_at_start = sys.getrefcount(None)
        self._sampler = QTimer(self)
        self._sampler.timeout.connect(self._sample)
        self.exit_code = 0
        self.finished = False

    def start(self) -> None:
        self._started = time.monotonic()
        self._none_at_start = sys.getrefcount(None)
        self.stalls.start()
        self._sampler.start(int(self.every_s * 1000))

    def _sample(self) -> None:
        stats = self.window.last_stats
        sample = SoakSample(
            elapsed_s=round(time.monotonic() - self._started, 1),
            frames_processed=stats.processed if stats else 0,
            frames_painted=self.window.live.frames_shown,
            events=self.window.events_count,
            rss_mb=round(resident_mb(), 1),
            max_stall_ms=round(self.stalls.take_interval(), 1),
            none_refcount=sys.getrefcount(None),
        )
        self.samples.append(sample)
        print(json.dumps(asdict(sample)), file=self.out, flush=True)
        if sample.elapsed_s >= self.duration_s - self.every_s / 2:
            self.finish()

    def summary(self) -> dict[str, object]:
        """Totals and the memory curve of the run so far."""
        if not self.samples:
            return {"samples": 0}
        first, last = self.samples[0], self.samples[-1]
        drift = last.none_refcount - self._none_at_start
        drop = max(0, self._none_at_start - min(sample.none_refcount for sample in self.samples))
        return {
            "summary": True,
            "minutes": round(last.elapsed_s / 60, 2),
            "frames_processed": last.frames_processed,
            "frames_painted": last.frames_painted,
            "fps": round(last.frames_processed / max(last.elapsed_s, 1e-9), 2),
            "events": last.events,
            "rss_first_mb": first.rss_mb,
            "rss_last_mb": last.rss_mb,
            "rss_peak_mb": max(sample.rss_mb for sample in self.samples),
            "rss_slope_second_half_mb_per_hour": round(memory_slope_mb_per_hour(self.samples), 2),
            "max_stall_ms": round(self.stalls.overall_max_ms, 1),
            "none_refcount_drift": drift,
            "none_refcount_largest_drop": drop,
            "python": sys.version.split()[0],
            "healthy": sys.version_info >= (3, 12) or drop < NONE_DROP_LIMIT,
        }

    def finish(self) -> None:
        """Print the summary and close the window (once)."""
        if self.finished:
            return
        self.finished = True
        self._sampler.stop()
        summary = self.summary()
        self.exit_code = 0 if summary.get("healthy", True) else 1
        print(json.dumps(summary), file=self.out, flush=True)
        self.quit_app()
