"""Cost of passive liveness in the kiosk, on this machine.

Runs the liveness demo (640x480, faceguard.kiosk.demo.AttackDemoSource) through the kiosk
pipeline with liveness off, and after each frame times the liveness networks on the counted
face; prints the medians (after 5 warm-up frames) and the share of one scored frame in the
frame time. The kiosk scores every LIVENESS_STRIDE-th undecided frame, so the cost per
decision frame is that share divided by the stride.

    python tools/liveness_cost.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from faceguard.clock import ManualClock
from faceguard.core.context import AppContext
from faceguard.kiosk.demo import AttackDemoSource, enrol_demo_person
from faceguard.kiosk.liveness_gate import LIVENESS_STRIDE
from faceguard.kiosk.pipeline import pipeline_for
from faceguard.settings import Settings
from faceguard.vision.liveness import LivenessChecker


def main() -> None:
    """Measure and print one JSON object."""
    settings = Settings(kiosk_name="demo", liveness_mode="off")
    ctx = AppContext(Path(tempfile.mkdtemp()), settings=settings)
    enrol_demo_person(ctx)
    clock = ManualClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    pipe = pipeline_for(ctx, clock=clock)
    checker = LivenessChecker()
    source = AttackDemoSource(loop=False)
    source.open()
    frame_ms: list[float] = []
    live_ms: list[float] = []
    for index in range(source.cycle_frames):
        frame = source.render(index)
        clock.advance(1 / 15)
        result = pipe.process(frame)
        counted = [f for f in result.faces if f.counted]
        if not counted:
            continue
        tick = time.perf_counter()
        checker.score(frame, counted[0].box)
        live_ms.append((time.perf_counter() - tick) * 1000)
        frame_ms.append(result.latency_ms)
    frame_ms, live_ms = frame_ms[5:], live_ms[5:]
    frame_time, live = statistics.median(frame_ms), statistics.median(live_ms)
    ordered = sorted(live_ms)
    print(json.dumps({
        "frames": len(frame_ms), "frame_ms_median": round(frame_time, 1),
        "liveness_ms_median": round(live, 1),
        "liveness_ms_p10_p90": [round(ordered[len(ordered) // 10], 1),
                                round(ordered[9 * len(ordered) // 10], 1)],
        "share_per_scored_frame": round(live / frame_time, 3), "stride": LIVENESS_STRIDE,
        "share_per_decision_frame": round(live / frame_time / LIVENESS_STRIDE, 3),
        "load_average": [round(v, 2) for v in os.getloadavg()]}, indent=1))


if __name__ == "__main__":
    main()
