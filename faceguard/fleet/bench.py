"""``faceguard server bench``: the fleet at scale, against a real (scratch) PostgreSQL database.

Simulated kiosks are real :class:`SyncEngine` / :class:`SyncLoop` objects, each with its own
in-memory face library, its own join (a login role on the server) and its own connections;
only the camera is missing: events are written into each library at a fixed rate.

1. **steady**: every kiosk logs ``events`` events at ``rate_hz`` while its sync loop runs
   (waking it after each entry, as ``faceguard run`` does);
   up-sync lag = the server's ``received`` minus the event's time, p50/p99; events/s on the
   server over the phase;
2. **burst**: every kiosk holds a backlog of ``events`` events and all sync at once; events/s
   the server took;
3. **enrolment burst**: one kiosk enrols ``templates`` people (one template each) and syncs;
   ``receivers`` kiosks with their sync loops running (LISTEN/NOTIFY) take them over; lag of
   each template at each receiver from the start of the upload, p50/p99;
4. **memory**: a library holding ``memory_templates`` templates and its matcher loaded: the
   process's resident memory before and after, and the file size.

Use a database of its own: the kiosks it joins (``bench-...``) stay on the server.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.fleet import local
from faceguard.fleet.config import join, read_password
from faceguard.fleet.engine import SyncEngine
from faceguard.fleet.server_schema import connect, init_server
from faceguard.fleet.sync_loop import SyncLoop
from faceguard.library.database import FaceLibrary
from faceguard.vision.image_io import encode_jpeg

MODEL_ID = "bench-model"


def _rss_mib() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:  # None, not NaN: the report stays valid JSON
        return {"p50": None, "p99": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(arr, 50)), 4),
            "p99": round(float(np.percentile(arr, 99)), 4),
            "max": round(float(arr.max()), 4), "n": int(arr.size)}


class _Kiosk:
    def __init__(self, folder: Path, dsn: str, name: str) -> None:
        self.name, self.folder = name, folder
        config = join(folder, dsn, name)
        self.library = FaceLibrary.in_memory()
        self.engine = SyncEngine(self.library, config, read_password(folder), batch=500)
        self.loop: SyncLoop | None = None

    def start(self, poll_s: float) -> None:
        self.loop = SyncLoop(self.engine, self.folder, interval_s=30.0, poll_s=poll_s,
                             backoff_s=(0.5, 5.0)).start()

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
            self.loop = None

    def close(self) -> None:
        self.stop()
        self.engine.close()
        self.library.close()


def run_fleet_bench(dsn: str, *, kiosks: int = 50, events: int = 200, rate_hz: float = 10.0,
                    templates: int = 10_000, receivers: int = 5,
                    memory_templates: int = 100_000,
                    progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the four phases; their figures as one JSON-able dict."""
    init_server(dsn)
    tag = secrets.token_hex(3)
    report: dict[str, Any] = {"kiosks": kiosks, "events_per_kiosk": events,
                              "rate_hz": rate_hz, "templates": templates,
                              "receivers": receivers, "cpu": _cpu_name()}
    with tempfile.TemporaryDirectory(prefix="faceguard-fleet-bench-") as scratch:
        root = Path(scratch)
        fleet = []
        for i in range(kiosks):
            folder = root / f"k{i:02d}"
            fleet.append(_Kiosk(folder, dsn, f"bench-{tag}-{i:02d}"))
        progress(f"{kiosks} kiosks joined")
        try:
            report["steady"] = _steady(dsn, fleet, events, rate_hz, progress)
            report["burst"] = _burst(dsn, fleet, events, progress)
            report["enrolment"] = _enrolment(fleet, templates, receivers, progress)
        finally:
            for kiosk in fleet:
                kiosk.close()
    report["memory"] = _memory(memory_templates, progress)
    return report


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return "unknown"


def _server_lags(dsn: str, names: list[str]) -> tuple[list[float], float]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM received - timestamp), extract(epoch FROM received) "
            "FROM events WHERE kiosk_name = ANY(%s)", (names,)).fetchall()
    lags = [float(r[0]) for r in rows]
    received = [float(r[1]) for r in rows]
    span = (max(received) - min(received)) if received else 0.0
    return lags, span


def _steady(dsn: str, fleet: list[_Kiosk], events: int, rate_hz: float,
            progress: Callable[[str], None]) -> dict[str, Any]:
    for kiosk in fleet:
        kiosk.start(poll_s=1.0)  # the kiosk's own settings

    def door(kiosk: _Kiosk) -> None:
        for _ in range(events):
            kiosk.library.add_event(datetime.now(UTC), kiosk.name, None, None, "unknown")
            assert kiosk.loop is not None
            kiosk.loop.wake()  # as `faceguard run` does after each entry
            time.sleep(1.0 / rate_hz)

    started = time.monotonic()
    threads = [threading.Thread(target=door, args=(k,)) for k in fleet]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = time.monotonic() - started
    deadline = time.monotonic() + 300
    while any(local.waiting(k.library).events for k in fleet) and time.monotonic() < deadline:
        time.sleep(0.1)
    for kiosk in fleet:
        kiosk.stop()
    lags, span = _server_lags(dsn, [k.name for k in fleet])
    total = len(fleet) * events
    progress(f"steady: {len(lags)} of {total} events on the server")
    return {"events": len(lags), "expected": total, "written_s": round(written, 2),
            "server_events_per_s": round(len(lags) / span, 1) if span else None,
            "offered_events_per_s": round(len(fleet) * rate_hz, 1),
            "upload_lag_s": _percentiles(lags)}


def _burst(dsn: str, fleet: list[_Kiosk], events: int,
           progress: Callable[[str], None]) -> dict[str, Any]:
    for kiosk in fleet:
        with kiosk.library.transaction("a backlog"):
            for _ in range(events):
                kiosk.library.add_event(datetime.now(UTC), kiosk.name, None, None, "unknown")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(fleet)) as pool:
        reports = list(pool.map(lambda k: k.engine.sync_once(), fleet))
    took = time.perf_counter() - started
    uploaded = sum(r.uploaded_events for r in reports)
    progress(f"burst: {uploaded} events in {took:.2f} s")
    return {"events": uploaded, "seconds": round(took, 3),
            "server_events_per_s": round(uploaded / took, 1)}


def _enrolment(fleet: list[_Kiosk], templates: int, receivers: int,
               progress: Callable[[str], None]) -> dict[str, Any]:
    source, takers = fleet[0], fleet[1:1 + receivers]
    for kiosk in takers:
        kiosk.engine.sync_once()  # up to date before the burst
        kiosk.start(poll_s=1.0)  # NOTIFY wakes them
    rng = np.random.default_rng(13)
    crop = _crop(rng)
    vectors = rng.standard_normal((templates, 128)).astype(np.float32)
    tick = time.perf_counter()
    with source.library.transaction("an enrolment burst"):
        for i in range(templates):
            person = source.library.add_person(f"Bench Person {i:06d}")
            source.library.add_template(person.id, vectors[i], MODEL_ID, 0.9, crop)
    enrol_s = time.perf_counter() - tick
    arrivals: list[list[tuple[float, int]]] = [[] for _ in takers]
    started = time.perf_counter()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = time.perf_counter() - started
            for slot, kiosk in enumerate(takers):
                with kiosk.library.reading("counting") as conn:
                    count = int(conn.execute("SELECT count(*) FROM templates").fetchone()[0])
                if not arrivals[slot] or arrivals[slot][-1][1] != count:
                    arrivals[slot].append((now, count))
            if all(a and a[-1][1] >= templates for a in arrivals):
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    upload = source.engine.sync_once()
    upload_s = time.perf_counter() - started
    watcher.join(600)
    done.set()
    for kiosk in takers:
        kiosk.stop()
    lags: list[float] = []
    for curve in arrivals:
        previous = 0
        for moment, count in curve:
            lags += [moment] * max(0, min(count, templates) - previous)
            previous = max(previous, count)
    complete = [c[-1][0] for c in arrivals if c and c[-1][1] >= templates]
    progress(f"enrolment: {upload.pushed_templates} templates up in {upload_s:.2f} s, at "
             f"{len(complete)} of {len(takers)} receivers")
    return {"local_enrol_s": round(enrol_s, 2), "upload_s": round(upload_s, 2),
            "pushed_templates": upload.pushed_templates,
            "receivers_complete": len(complete),
            "receiver_all_s": _percentiles(complete),
            "template_lag_s": _percentiles(lags)}


_MEASURE = """
import json, os, sys
from pathlib import Path
def rss():
    return int(Path('/proc/self/statm').read_text().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
from faceguard.library.database import FaceLibrary
from faceguard.library.matcher import Matcher
library = FaceLibrary.open(sys.argv[1], read_only=True)
before = rss()
matcher = Matcher.from_library(library, sys.argv[2])
after = rss()
print(json.dumps({"templates": len(matcher), "rss_before_mib": round(before, 1),
                  "rss_after_matcher_mib": round(after, 1),
                  "matcher_mib": round(after - before, 1)}))
"""


def _crop(rng: np.random.Generator) -> bytes:
    """A face-sized JPEG about as large as a real aligned crop (smooth, not noise)."""
    import cv2

    noise = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    return encode_jpeg(cv2.GaussianBlur(noise, (0, 0), 3))


def _memory(count: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """A library of ``count`` templates; a fresh process opens it and loads the matcher."""
    import json
    import subprocess
    import sys

    if count <= 0:
        return {}
    with tempfile.TemporaryDirectory(prefix="faceguard-fleet-mem-") as scratch:
        path = Path(scratch) / "kiosk.db"
        library = FaceLibrary.open(path)
        rng = np.random.default_rng(5)
        crop = _crop(rng)
        per_person = 10
        with library.transaction("many templates"):
            for start in range(0, count, per_person):
                person = library.add_person(f"Memory Person {start // per_person:06d}")
                for vector in rng.standard_normal((min(per_person, count - start), 128)):
                    library.add_template(person.id, vector, MODEL_ID, 0.9, crop)
        library.close()
        size = path.stat().st_size / 2**20
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), MODEL_ID],
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    result: dict[str, Any] = json.loads(out)
    result["library_file_mib"] = round(size, 1)
    progress(f"memory: {result['templates']} templates, matcher {result['matcher_mib']} MiB")
    return result
