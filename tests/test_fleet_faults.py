"""Fleet faults with real parts: the server stopped hard mid-run, a kiosk killed with -9 in
the middle of an upload, three kiosk processes against one server."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from faceguard.fleet.server_schema import connect, init_server
from faceguard.fleet.status import fleet_status
from faceguard.library.database import FaceLibrary
from faceguard.vision.image_io import load_image
from tests.conftest import REPO, demo_image, make_data_dir, run_cli

FAST_SYNC = {"fleet_interval_s": 2.0, "fleet_backoff_max_s": 1.0}


def kiosk(tmp_path: Path, dsn: str, name: str, **settings: object) -> Path:
    parent = tmp_path / name
    parent.mkdir()
    folder = make_data_dir(parent, **{**FAST_SYNC, **settings})
    assert run_cli(folder, "kiosk", "join", "--dsn", dsn, "--name", name) == 0
    return folder


def server_events(dsn: str, kiosk_name: str) -> list[int]:
    """The local event ids the server holds for a kiosk, one per row, in order."""
    with connect(dsn) as conn:
        return [int(r[0]) for r in conn.execute(
            "SELECT (details->>'local_id')::bigint FROM events WHERE kiosk_name = %s "
            "ORDER BY seq", (kiosk_name,))]


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


class Lines:
    """A child process's stdout lines, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))

    def until(self, predicate, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.lines.append(line)
            if predicate(line):
                return line
        return None


@pytest.fixture()
def server(pg_dsn: str, test_embedder_env: object) -> str:
    init_server(pg_dsn)
    return pg_dsn


def test_server_stopped_hard_mid_run_kiosk_keeps_logging_then_uploads_all_once(
        server: str, tmp_path: Path, pg_cluster) -> None:
    folder = kiosk(tmp_path, server, "front")
    total = 120
    proc = subprocess.Popen([sys.executable, "-m", "tests.fleet_kiosk_child", str(folder),
                             str(total), "0.03"], stdout=subprocess.PIPE, text=True,
                            env=child_env(), cwd=REPO)
    lines = Lines(proc)
    try:
        assert lines.until(lambda s: s == "event 30", 30), lines.lines
        pg_cluster.stop("immediate")
        stopped_at = len(server_events_safe(server))
        assert lines.until(lambda s: s == "event 80", 30), "the kiosk stopped logging offline"
        lib = FaceLibrary.open(folder / "faceguard.db", read_only=True)
        deadline = time.monotonic() + 20  # the round in flight gives up (connect timeout)
        while (status := fleet_status(lib, folder)).state != "offline" and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        lib.close()
        assert status.state == "offline" and status.waiting > 0, status
        pg_cluster.start()
        assert lines.until(lambda s: s == "done", 60), lines.lines[-5:]
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if not pg_cluster.running():
            pg_cluster.start()
    uploaded = server_events(server, "front")
    assert uploaded == list(range(1, total + 1))  # every event, once, in order
    assert stopped_at < total


def server_events_safe(dsn: str) -> list[int]:
    try:
        return server_events(dsn, "front")
    except Exception:
        return []


def test_kiosk_killed_with_minus_9_mid_upload_loses_and_doubles_nothing(
        server: str, tmp_path: Path) -> None:
    folder = kiosk(tmp_path, server, "front")
    total = 6000
    lib = FaceLibrary.open(folder / "faceguard.db")
    with lib.transaction("logging a backlog"):
        for _ in range(total):
            lib.add_event(datetime.now(UTC), "front", None, None, "unknown")
    lib.close()
    command = [sys.executable, "-m", "faceguard", "--data-dir", str(folder), "sync"]
    killed_at = None
    for _ in range(5):  # until a kill lands in the middle of the upload
        proc = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            count = len(server_events(server, "front"))
            if 0 < count < total:
                proc.send_signal(signal.SIGKILL)
                killed_at = count
                break
            time.sleep(0.005)
        proc.wait(10)
        if killed_at is not None:
            break
    assert killed_at is not None, "every upload finished before the kill"
    lib = FaceLibrary.open(folder / "faceguard.db")
    assert lib.integrity_check() == []
    lib.close()
    assert run_cli(folder, "sync") == 0
    assert server_events(server, "front") == list(range(1, total + 1))


def test_three_kiosks_a_person_enrolled_at_one_is_recognised_at_the_others(
        server: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photo = demo_image("grace_hopper.jpg")
    source = tmp_path / "scene"
    source.mkdir()
    shutil.copy(photo, source / "a_face.jpg")
    blank = (np.zeros_like(load_image(photo)) + 90).astype(np.uint8)
    from faceguard.vision.image_io import encode_jpeg

    (source / "b_blank.jpg").write_bytes(encode_jpeg(blank))
    front = kiosk(tmp_path, server, "front", repeat_window_s=0)
    doors = {name: kiosk(tmp_path, server, name, repeat_window_s=0) for name in ("side", "back")}
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "faceguard", "--data-dir", str(folder), "--min-face", "40", "run",
         "--headless", "--source", str(source), "--loop", "--realtime"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env())
        for name, folder in doors.items()}
    readers = {name: Lines(proc) for name, proc in procs.items()}
    try:
        for name, reader in readers.items():  # a stranger first: logged as unknown
            assert reader.until(lambda s: '"decision": "unknown"' in s, 60), name
        assert run_cli(front, "enroll", "Grace Hopper", str(photo)) == 0
        started = time.monotonic()
        assert run_cli(front, "sync") == 0
        took = {}
        for name, reader in readers.items():
            line = reader.until(lambda s: '"person": "Grace Hopper"' in s, 30)
            assert line is not None, f"{name} never recognised her: {reader.lines[-3:]}"
            assert json.loads(line)["decision"] == "known"
            took[name] = time.monotonic() - started
        with capsys.disabled():
            print(f"\nrecognised at the other doors after "
                  f"{ {k: round(v, 2) for k, v in took.items()} } s")
        assert max(took.values()) < 15.0  # the stated bound (README: within 15 s)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    for folder in (*doors.values(), front):
        assert run_cli(folder, "sync") == 0
    assert run_cli(front, "sync") == 0
    capsys.readouterr()
    for name, folder in doors.items():
        lib = FaceLibrary.open(folder / "faceguard.db", read_only=True)
        own = [e.id for e in lib.query_events(kiosk_id=name)]
        lib.close()
        assert server_events(server, name) == own and own
    everyone = FaceLibrary.open(front / "faceguard.db", read_only=True)
    counts = {name: everyone.count_events(kiosk_id=name) for name in doors}
    assert counts == {name: len(server_events(server, name)) for name in doors}
    everyone.close()
