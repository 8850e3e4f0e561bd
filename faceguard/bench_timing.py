"""Timing helpers of `faceguard bench`: medians and fastest runs, two jobs in alternation so
that a busy neighbour slows both alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed_median_ms(run: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``run`` in milliseconds."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(samples), 3)


def paired_median_ms(first: Callable[[], object], second: Callable[[], object],
                     repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Medians of two jobs timed in alternation (so a busy neighbour slows both alike)."""
    for _ in range(warmup):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for job, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            job()
            into.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(samples[0]), 3), round(statistics.median(samples[1]), 3)


def paired_best_ms(first: Callable[[], object], second: Callable[[], object],
                   repeats: int) -> tuple[float, float]:
    """Fastest run of each of two jobs timed in alternation, in milliseconds."""
    best = [float("inf"), float("inf")]
    for _ in range(repeats + 2):
        for slot, job in enumerate((first, second)):
            start = time.perf_counter()
            job()
            best[slot] = min(best[slot], (time.perf_counter() - start) * 1000.0)
    return round(best[0], 4), round(best[1], 4)

