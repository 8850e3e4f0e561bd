"""Backups of the face library: automatic rotating copies, ``faceguard backup`` and ``restore``.

Copies are made with SQLite's online backup API (consistent while the kiosk writes) into
``backups/`` beside the database: ``faceguard-<UTC time>-<reason>.db``. The kiosk makes an
``auto`` copy once a day after a full integrity check (never of a damaged library) and keeps
the newest ``backups_keep`` of them (a setting, default 7); ``pre-upgrade`` (before a schema
migration), ``pre-restore`` and ``manual`` copies are never deleted automatically.

A restore checks the file (an SQLite FaceGuard library that passes ``PRAGMA integrity_check``),
keeps the current library as a ``pre-restore`` backup, and replaces it, all while holding the
data folder's kiosk lock: it refuses while a kiosk (window or ``run --headless``) runs there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from faceguard.errors import LibraryError
from faceguard.library.database import (
    BACKUP_PREFIX,
    MIGRATION_NAMES,
    MIGRATIONS,
    FaceLibrary,
    backup_name,
    backups_dir,
    copy_database,
)
from faceguard.library.retention import Retention, purge
from faceguard.settings import load_settings

log = logging.getLogger(__name__)

DEFAULT_KEEP = 7
DAY_S = 86_400.0
LOCK_FILE = "kiosk.lock"
SQLITE_MAGIC = b"SQLite format 3\x00"


# -- the kiosk lock ------------------------------------------------------------------------------

class KioskLock:
    """An OS file lock on ``<data dir>/kiosk.lock``: shared while a kiosk runs, exclusive while
    a restore replaces the library. The OS drops it when the process ends (even on kill -9).

    On Windows (no shared locks) the kiosk's lock is exclusive too.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._handle: IO[bytes] | None = None

    def acquire(self, *, exclusive: bool) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        try:
            handle = open(self.path, "a+b")  # noqa: SIM115 (held until release)
        except OSError as error:
            raise LibraryError(f"cannot create the lock file {self.path}: "
                               f"{error.strerror}") from error
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows only
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                flag = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
                fcntl.flock(handle.fileno(), flag | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> KioskLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def hold_kiosk_lock(data_dir: Path) -> KioskLock | None:
    """The lock a running kiosk holds (shared); None when it cannot be taken (logged)."""
    lock = KioskLock(data_dir)
    try:
        if lock.acquire(exclusive=False):
            return lock
    except LibraryError as error:
        log.warning("%s; restores will not know that the kiosk runs", error)
        return None
    log.warning("%s is held by another program (a restore?)", lock.path)
    return None


# -- backups -----------------------------------------------------------------------------------

def _backup_time(path: Path) -> datetime | None:
    stamp = path.name[len(BACKUP_PREFIX):].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def list_backups(library_file: Path, reason: str | None = None) -> list[Path]:
    """Backups in ``backups/`` beside the library, oldest first (only ``reason`` if given)."""
    folder = backups_dir(library_file)
    if not folder.is_dir():
        return []
    suffix = f"-{reason}.db" if reason else ".db"
    found = [p for p in folder.glob(f"{BACKUP_PREFIX}*{suffix}")
             if p.is_file() and _backup_time(p) is not None]
    return sorted(found, key=lambda p: p.name)


def prune_backups(library_file: Path, keep: int, reason: str = "auto") -> list[Path]:
    """Delete all but the newest ``keep`` backups of ``reason``; returns those deleted."""
    old = list_backups(library_file, reason)
    doomed = old[:-keep] if keep > 0 else old
    for path in doomed:
        with contextlib.suppress(OSError):
            path.unlink()
    return doomed


def backup_library(library: FaceLibrary, dest: str | os.PathLike[str] | None = None, *,
                   reason: str = "manual", moment: datetime | None = None) -> Path:
    """Copy the library to ``dest`` (default: ``backups/``, named with ``moment`` or now)."""
    if library.path is None:
        raise LibraryError("An in-memory library cannot be backed up to a file.")
    target = Path(dest) if dest is not None else \
        backups_dir(library.path) / backup_name(reason, moment)
    return library.backup_to(target)


@dataclass
class DailyMaintenance:
    """The kiosk's daily job: full integrity check, the retention purge, then an ``auto``
    backup and rotation.

    Called every so often by the kiosk loop; does its work when a day has passed since the
    last run (or the newest automatic backup). A damaged library is reported (writes are
    refused from then on) and never backed up over good copies. ``retention`` None reads the
    ``retention.*`` settings of the library's data folder at each run.
    """

    library: FaceLibrary
    keep: int = DEFAULT_KEEP
    every_s: float = DAY_S
    clock: Callable[[], float] = time.time
    last_run: float | None = None
    retention: Retention | None = None

    def due(self) -> bool:
        """Whether a day has passed since the last check or automatic backup."""
        if self.library.path is None or self.library.read_only:
            return False
        latest = self.last_run or 0.0
        newest = list_backups(self.library.path, "auto")
        if newest:
            stamp = _backup_time(newest[-1])
            latest = max(latest, stamp.timestamp() if stamp else 0.0)
        return self.clock() - latest >= self.every_s

    def __call__(self) -> Path | None:
        """Run when due; returns the new backup, if one was made."""
        if not self.due():
            return None
        self.last_run = self.clock()
        problems = self.library.integrity_check(full=True)
        if problems:
            log.error("daily check: %s", self.library.damage)
            return None
        self._purge()
        if self.keep <= 0:
            return None
        path = backup_library(self.library, reason="auto",
                              moment=datetime.fromtimestamp(self.last_run, UTC))
        assert self.library.path is not None
        prune_backups(self.library.path, self.keep)
        log.info("daily check passed; backed up the face library to %s", path)
        return path

    def _purge(self) -> None:
        """Apply the retention (a failure is logged; the backup still runs)."""
        assert self.library.path is not None and self.last_run is not None
        retention = self.retention or Retention.from_settings(
            load_settings(self.library.path.parent))
        try:
            result = purge(self.library, retention, actor="kiosk",
                           now=datetime.fromtimestamp(self.last_run, UTC))
        except LibraryError as error:
            log.error("daily purge: %s", error)
            return
        log.info("daily purge: %d events, %d unknown-face crops, %d audit entries deleted",
                 result.events, result.unknown_crops, result.audit)


# -- restore -----------------------------------------------------------------------------------

@contextlib.contextmanager
def _read_file(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection that never writes next to ``path`` (no -wal/-shm)."""
    conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def check_library_file(path: str | os.PathLike[str]) -> list[str]:
    """Check that a file is a sound FaceGuard library; returns its schema steps.

    LibraryError when it is missing, not an SQLite database, not a FaceGuard library, from a
    newer FaceGuard, or fails ``PRAGMA integrity_check``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise LibraryError(f"{file} is not a file")
    try:
        with file.open("rb") as handle:
            magic = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise LibraryError(f"cannot read {file}: {error.strerror}") from error
    if magic != SQLITE_MAGIC:
        raise LibraryError(f"{file} is not a FaceGuard library (not an SQLite database)")
    try:
        with _read_file(file) as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise LibraryError(f"{file} is damaged ({problems[0]}); it was not restored")
            has_steps = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'").fetchone()
            steps = [str(r[0]) for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                (MIGRATIONS.name,))] if has_steps else []
    except sqlite3.Error as error:
        raise LibraryError(f"{file} is not a usable FaceGuard library ({error})") from error
    if not steps or MIGRATION_NAMES[0] not in steps:
        raise LibraryError(f"{file} is an SQLite database but not a FaceGuard library")
    newer = sorted(set(steps) - set(MIGRATION_NAMES))
    if newer:
        raise LibraryError(f"{file} was written by a newer FaceGuard (schema steps "
                           f"{', '.join(newer)}); update FaceGuard first")
    return steps


def _keep_current(library_file: Path) -> Path | None:
    """Back up the library about to be replaced; a damaged one is copied file by file."""
    if not library_file.exists():
        return None
    dest = backups_dir(library_file) / backup_name("pre-restore")
    try:
        conn = sqlite3.connect(library_file.as_uri() + "?mode=ro", uri=True)
        try:
            copy_database(conn, dest)
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as error:
        log.warning("current library not copied by SQLite (%s); copying its files", error)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library_file, dest)
            wal = library_file.with_name(library_file.name + "-wal")
            if wal.exists():
                shutil.copy2(wal, dest.with_name(dest.name + "-wal"))
        except OSError as copy_error:
            raise LibraryError(f"cannot keep the current library as {dest} "
                               f"({copy_error.strerror}); nothing was restored") from copy_error
    return dest


def restore_library(library_file: Path, source: str | os.PathLike[str], *,
                    actor: str = "cli") -> Path | None:
    """Replace the library with a checked copy of ``source``; returns the kept old library.

    Refuses while a kiosk holds the data folder's lock. The restored library is upgraded if it
    is older, and the restore is written to its audit log.
    """
    source_file = Path(source).expanduser().absolute()
    target = Path(library_file).absolute()
    if source_file == target:
        raise LibraryError("a library cannot be restored over itself")
    check_library_file(source_file)
    if not target.parent.is_dir():
        raise LibraryError(f"the data folder {target.parent} does not exist")
    with KioskLock(target.parent) as lock:
        if not lock.acquire(exclusive=True):
            raise LibraryError(f"FaceGuard is running on {target.parent} (it holds "
                               f"{lock.path}); close the kiosk, then restore")
        incoming = target.with_name(target.name + ".restoring")
        try:
            with _read_file(source_file) as conn:
                copy_database(conn, incoming)
        except (sqlite3.Error, OSError) as error:
            with contextlib.suppress(OSError):
                incoming.unlink()
            raise LibraryError(f"cannot copy {source_file}: {error}; nothing was restored") \
                from error
        kept = _keep_current(target)
        # The old write-ahead log must go first: SQLite would replay it onto the new file.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                target.with_name(target.name + suffix).unlink()
        os.replace(incoming, target)
        with FaceLibrary.open(target) as restored:
            restored.audit(actor, "restore", {"from": str(source_file),
                                              "kept": str(kept) if kept else None})
    return kept
