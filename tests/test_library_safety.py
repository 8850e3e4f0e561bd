"""Damaged and read-only libraries, backups and restores, on real database files.

Damage is made the way a disk or a crash makes it: random bytes over whole pages of a real
database file. Tests run as root, and root ignores ``chmod``; so a read-only data folder is
either a real read-only bind mount inside a private mount namespace (``unshare -m``, skipped
where that is not allowed) or emulated by making ``os.access`` report "not writable", and then
the test checks the open mode FaceGuard chose and that no ``-wal``/``-shm`` file is left.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_ERROR, EXIT_OK, main
from faceguard.core.context import AppContext
from faceguard.errors import LibraryError
from faceguard.kiosk import loop as kiosk_loop
from faceguard.kiosk.loop import KioskLoop
from faceguard.kiosk.sources import FrameSource, SourceEnded, SourceSpec
from faceguard.library.backup import (
    DailyMaintenance,
    KioskLock,
    check_library_file,
    list_backups,
    restore_library,
)
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary, backups_dir
from tests.conftest import REPO

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
JPEG = b"\xff\xd8" + bytes(2000)  # a crop-sized blob (the library checks only the marker)


def _fill(path: Path, people: int = 4, events: int = 600) -> None:
    """A real library with people, templates and enough events to span many pages."""
    rng = np.random.default_rng(3)
    with FaceLibrary.open(path) as library:
        ids = [library.add_person(f"Person {i}", employee_id=f"E{i}").id for i in range(people)]
        for person_id in ids:
            library.add_template(person_id, rng.standard_normal(128), "m", 0.9, JPEG, "a.jpg")
        for i in range(events):
            library.add_event(T0 + timedelta(minutes=i), "kiosk-1", ids[i % people], 0.9,
                              "known", JPEG)


def _root_page(path: Path, table: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                            (table,)).fetchone()[0]
    finally:
        conn.close()
    return int(root), int(page_size)


def _damage(path: Path, table: str, pages: int = 2) -> None:
    """Random bytes over the first pages of a table's b-tree (the file is closed, no WAL)."""
    root, page_size = _root_page(path, table)
    assert not path.with_name(path.name + "-wal").exists()
    noise = random.Random(11)
    with path.open("r+b") as handle:
        for page in range(root, root + pages):
            handle.seek((page - 1) * page_size)
            handle.write(bytes(noise.randrange(256) for _ in range(page_size)))


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    _fill(folder / "faceguard.db")
    return folder


# -- damaged libraries ---------------------------------------------------------------------------

def test_a_damaged_library_is_found_at_open_and_refuses_writes(data: Path) -> None:
    _damage(data / "faceguard.db", "events")
    with FaceLibrary.open(data / "faceguard.db") as library:
        assert library.damage is not None and "damaged" in library.damage
        assert "faceguard restore" in library.damage and str(backups_dir(library.path or data))\
            in library.damage
        assert len(library.list_people()) == 4  # reads work where SQLite can
        with pytest.raises(LibraryError, match=r"damaged.*faceguard restore"):
            library.add_person("Someone New")
        with pytest.raises(LibraryError, match="damaged"):
            library.add_event(T0, "kiosk-1", None, None, "unknown")


def test_cli_writes_fail_and_reads_warn_on_a_damaged_library(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _damage(data / "faceguard.db", "templates", pages=1)
    assert main(["--data-dir", str(data), "people", "rename", "Person 1", "P One"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("faceguard: ") and "damaged" in err and "faceguard restore" in err
    assert "Traceback" not in err
    main(["--data-dir", str(data), "people", "list"])
    captured = capsys.readouterr()
    assert "faceguard: warning: The face library" in captured.err


def test_self_test_runs_a_full_integrity_check(
        data: Path, test_embedder_env: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data), "--self-test"]) == EXIT_OK
    assert "integrity_check ok" in capsys.readouterr().out
    _damage(data / "faceguard.db", "events")
    assert main(["--data-dir", str(data), "--self-test"]) == EXIT_ERROR
    out = capsys.readouterr().out
    assert "FAIL  face library" in out and "faceguard restore" in out


# -- read-only and missing data folders ----------------------------------------------------------

def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(("-wal", "-shm")))


def test_read_only_folder_opens_immutable_and_leaves_no_wal_files(
        data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # As root, chmod 0555 would not stop SQLite; report the folder and file as not writable,
    # the way os.access answers for another user or a read-only mount.
    real_access = os.access

    def no_write(path: object, mode: int, **kwargs: object) -> bool:
        if mode & os.W_OK and str(path).startswith(str(data)):
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", no_write)
    with FaceLibrary.open(data / "faceguard.db") as library:
        assert library.read_only and library.open_mode == "immutable"
        assert len(library.list_people()) == 4
        assert _leftovers(data) == []
    assert main(["--data-dir", str(data), "people", "list"]) == EXIT_OK
    assert "4 people" in capsys.readouterr().out
    assert main(["--data-dir", str(data), "log"]) == EXIT_OK
    assert "600 events" in capsys.readouterr().out
    assert _leftovers(data) == []


def test_read_only_open_uses_the_wal_of_a_running_writer(data: Path) -> None:
    with FaceLibrary.open(data / "faceguard.db") as writer:
        writer.add_person("Written Meanwhile")  # in the -wal file, not yet in the database
        with FaceLibrary.open(data / "faceguard.db", read_only=True) as reader:
            assert reader.open_mode == "ro"
            assert reader.find_person_by_name("Written Meanwhile") is not None


def _can_bind_read_only() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind / /mnt 2>/dev/null "
                            "&& mount -o remount,ro,bind /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_bind_read_only(), reason="needs unshare -m and bind mounts")
def test_people_list_and_log_work_on_a_real_read_only_mount(data: Path) -> None:
    # A private mount namespace: the read-only bind is seen by this child process only.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = (f"mount --bind {data} {data} && mount -o remount,ro,bind {data} && "
              f"touch {data}/probe 2>/dev/null && echo WRITABLE; "
              f"{sys.executable} -m faceguard --data-dir {data} people list && "
              f"{sys.executable} -m faceguard --data-dir {data} log --person 'Person 2'")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "WRITABLE" not in done.stdout
    assert "4 people" in done.stdout and "150 events" in done.stdout
    assert _leftovers(data) == []


@pytest.mark.parametrize("command", [["people", "list"], ["log"], ["backup"],
                                     ["admin", "status"]])
def test_read_commands_never_create_the_data_folder_or_a_library(
        tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main(["--data-dir", str(missing), *command]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "there is no face library" in err and "Traceback" not in err
    assert not missing.exists()
    missing.mkdir()
    assert main(["--data-dir", str(missing), *command]) == EXIT_ERROR
    assert list(missing.iterdir()) == []


# -- backups and restore ------------------------------------------------------------------------

def test_backup_command_copies_a_sound_library(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data), "backup"]) == EXIT_OK
    [copy] = list_backups(data / "faceguard.db", "manual")
    assert check_library_file(copy)[-1] == MIGRATION_NAMES[-1]
    target = tmp_path / "elsewhere.db"
    assert main(["--data-dir", str(data), "backup", "--to", str(target)]) == EXIT_OK
    with FaceLibrary.open(target, read_only=True) as library:
        assert len(library.list_people()) == 4 and library.count_events() == 600
    assert main(["--data-dir", str(data), "backup", "--to", str(target)]) == EXIT_ERROR
    assert "already exists" in capsys.readouterr().err


def test_daily_maintenance_checks_backs_up_and_rotates(data: Path) -> None:
    now = [T0.timestamp()]
    with FaceLibrary.open(data / "faceguard.db") as library:
        daily = DailyMaintenance(library, keep=3, clock=lambda: now[0])
        assert daily() is not None
        assert daily() is None  # not due again the same day
        for _ in range(5):
            now[0] += 86_400
            assert daily() is not None
        assert len(list_backups(data / "faceguard.db", "auto")) == 3
    _damage(data / "faceguard.db", "events")
    # quick_check at open already catches this damage; the daily full check must too, and must
    # not rotate the good copies out with a damaged one.
    with FaceLibrary.open(data / "faceguard.db") as damaged:
        daily = DailyMaintenance(damaged, keep=3, clock=lambda: now[0] + 2 * 86_400)
        assert daily() is None and damaged.damage is not None
    assert len(list_backups(data / "faceguard.db", "auto")) == 3


def test_migration_is_preceded_by_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(Database(conn), stop_before=MIGRATION_NAMES[4])
    conn.execute("INSERT INTO people (name, name_key, active, created) VALUES "
                 "('Old Timer', 'old timer', 1, '2025-01-01T00:00:00.000000+00:00')")
    conn.commit()
    conn.close()
    with FaceLibrary.open(path) as library:
        assert library.schema_version() == len(MIGRATION_NAMES)
        assert library.admin_state().protected  # it held people: its PIN was in settings.json
    [copy] = list_backups(path, "pre-upgrade")
    assert check_library_file(copy) == list(MIGRATION_NAMES[:4])


def test_restore_checks_the_file_keeps_the_current_library_and_audits(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.db"
    assert main(["--data-dir", str(data), "backup", "--to", str(good)]) == EXIT_OK
    assert main(["--data-dir", str(data), "people", "remove", "Person 0"]) == EXIT_OK
    not_sqlite = tmp_path / "photo.jpg"
    not_sqlite.write_bytes(JPEG)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    damaged = tmp_path / "damaged.db"
    shutil.copy(good, damaged)
    _damage(damaged, "events")
    capsys.readouterr()
    for bad, reason in ((not_sqlite, "not an SQLite database"), (other, "not a FaceGuard"),
                        (damaged, "damaged"), (tmp_path / "missing.db", "not a file")):
        assert main(["--data-dir", str(data), "restore", str(bad)]) == EXIT_ERROR
        assert reason in capsys.readouterr().err
    assert main(["--data-dir", str(data), "restore", str(good)]) == EXIT_OK
    assert "previous library is kept" in capsys.readouterr().out
    with FaceLibrary.open(data / "faceguard.db") as library:
        assert len(library.list_people()) == 4
        assert library.list_audit(limit=1)[0].action == "restore"
    [kept] = list_backups(data / "faceguard.db", "pre-restore")
    with FaceLibrary.open(kept, read_only=True) as old:
        assert len(old.list_people()) == 3


def test_restore_is_refused_while_the_kiosk_runs(data: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    with FaceLibrary.open(data / "faceguard.db") as library:
        library.backup_to(good)
    ctx = AppContext(data)
    ctx.hold_kiosk_lock()  # what pipeline_for does for the window and `run --headless`
    try:
        with pytest.raises(LibraryError, match="close the kiosk"):
            restore_library(data / "faceguard.db", good)
    finally:
        ctx.close()
    with KioskLock(data) as lock:
        assert lock.acquire(exclusive=True)  # released on close
    assert restore_library(data / "faceguard.db", good) is not None


class _Frames(FrameSource):
    """A finite source of small frames, slow enough for the housekeeping thread to run."""

    def __init__(self, count: int) -> None:
        super().__init__(SourceSpec("folder", "x"))
        self.left = count

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        if self.left <= 0:
            raise SourceEnded()
        self.left -= 1
        time.sleep(0.02)
        return np.zeros((8, 8, 3), np.uint8)

    def close(self) -> None:
        pass


def test_kiosk_loop_runs_the_housekeeping_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kiosk_loop, "HOUSEKEEPING_FIRST_S", 0.05)
    monkeypatch.setattr(kiosk_loop, "HOUSEKEEPING_EVERY_S", 0.05)
    calls = threading.Event()

    class Pipeline:
        housekeeping = staticmethod(calls.set)

        def process(self, frame: np.ndarray) -> object:
            from faceguard.kiosk.pipeline import FrameResult

            return FrameResult(0, datetime.now(UTC), 8, 8)

    loop = KioskLoop(lambda: _Frames(30), Pipeline(), realtime=False)  # type: ignore[arg-type]
    loop.run()
    assert calls.is_set()


def test_housekeeping_ends_with_the_loop_that_ran_it() -> None:
    """A source that ends (a file, the demo) ends the loop without stop(): its housekeeping
    thread ends too, instead of waking later on a pipeline and library closed since."""
    calls: list[float] = []

    class Pipeline:
        housekeeping = staticmethod(lambda: calls.append(time.monotonic()))

        def process(self, frame: np.ndarray) -> object:
            from faceguard.kiosk.pipeline import FrameResult

            return FrameResult(0, datetime.now(UTC), 8, 8)

    def housekeepers() -> int:
        return sum(t.name == "faceguard-housekeeping" and t.is_alive()
                   for t in threading.enumerate())

    before = housekeepers()
    for _ in range(3):
        KioskLoop(lambda: _Frames(3), Pipeline(), realtime=False).run()  # type: ignore[arg-type]
    assert housekeepers() == before
    assert calls == []  # the first check is due 10 minutes after the start: none ran
