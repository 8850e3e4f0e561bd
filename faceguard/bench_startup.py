"""`faceguard bench`'s start-up figures: cold start (process start to the first recognised
frame) and resident memory with the models and a large library loaded."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from faceguard.bench_kiosk import demo_person
from faceguard.errors import FaceGuardError
from faceguard.kiosk.demo import DEMO_PERSON
from faceguard.kiosk.demo_source import DemoSource
from faceguard.library.database import FaceLibrary
from faceguard.settings import save_settings
from faceguard.vision.engine import FaceEngine
from faceguard.vision.image_io import encode_jpeg

MEMORY_TEMPLATES = 100_000
COLD_START_FRAMES = 3  # demo frames of the enrolled person given to the cold kiosk


def cold_start(ctx: Any) -> dict[str, Any]:
    """Process start to the first recognised frame: `faceguard run --headless` in a fresh
    Python process on a library with the demo person enrolled and a folder of demo frames;
    the clock stops at its first "known" event line (3 agreeing frames). Also a bare
    interpreter's start, for scale."""
    engine: FaceEngine = ctx.engine
    with tempfile.TemporaryDirectory(prefix="faceguard-bench-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        frames = folder / "frames"
        frames.mkdir()
        # repeat window 0: every run logs its own first event
        save_settings(ctx.settings.replace(kiosk_name="bench", source=str(frames),
                                           repeat_window_s=0), data)
        library = FaceLibrary.open(data / "faceguard.db")
        try:
            person = library.add_person(DEMO_PERSON, actor="bench")
            vector, crop = demo_person(engine)
            library.add_template(person.id, vector, engine.model_id, 1.0,
                                 encode_jpeg(crop), actor="bench")
        finally:
            library.close()
        source = DemoSource(loop=False)
        source.open()
        for index in range(COLD_START_FRAMES):
            image = source.render(40 + index)  # the enrolled person in view
            cv2.imwrite(str(frames / f"{index}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        command = [sys.executable, "-m", "faceguard", "--data-dir", str(data), "run",
                   "--source", str(frames), "--headless"]
        bare = _time_process([sys.executable, "-c", "pass"])
        runs = [_time_first_known(command) for _ in range(3)]
    return {"seconds": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs],
            "bare_python_s": round(bare, 3), "target_s": 2.0,
            "command": "faceguard run --source FOLDER --headless (first 'known' event)"}


def _time_process(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - start


def _time_first_known(command: list[str]) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if '"decision": "known"' in line:
                return time.perf_counter() - start
        raise FaceGuardError("the cold kiosk did not recognise the demo person: "
                             + (process.stderr.read() if process.stderr else "")[-300:])
    finally:
        process.kill()
        process.wait(timeout=10)


_MEMORY_CHILD = """
import json, sys
import faceguard.native_threads
import numpy as np
from faceguard.vision.engine import FaceEngine
from faceguard.library.matcher import Matcher

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

count = int(sys.argv[1])
start = rss()
engine = FaceEngine.load()
models = rss()
rng = np.random.default_rng(0)
matcher = Matcher()
rows = rng.standard_normal((count, 128), dtype=np.float32)
matcher.load(np.repeat(np.arange(count // 4 + 1), 4)[:count], rows)
del rows
matcher.search(rng.standard_normal(128).astype(np.float32))
print(json.dumps({"start_mb": start, "models_mb": models, "templates_mb": rss(),
                  "matcher_mb": matcher.nbytes / 2**20}))
"""


def memory_at(count: int) -> dict[str, Any]:
    """Resident memory of a fresh process with the models loaded and ``count`` templates in
    the matcher (Linux: /proc/self/statm), and the matcher's own arrays."""
    if not Path("/proc/self/statm").exists():
        raise FaceGuardError("resident memory is read from /proc (Linux only)")
    done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(count)], check=False,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise FaceGuardError(f"the memory probe failed: {done.stderr.strip()[-300:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"templates": count, **{k: round(v, 1) for k, v in figures.items()}}
