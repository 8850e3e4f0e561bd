"""The face library's file on disk: where backups go and how they are named, the atomic online
copy, how a read-only library is opened, SQLite's checks of the file, and what an SQLite error
means to the user (a one-line :class:`~faceguard.errors.LibraryError`: missing folder, not a
database, damaged, locked, read-only, disk full)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from faceguard.errors import LibraryError
from faceguard.library.records import utc_now
from faceguard.paths import make_private_dir, make_private_file

log = logging.getLogger("faceguard.library.database")

READ_ONLY_MESSAGE = "The face library database is read-only; nothing was changed."
BACKUPS_FOLDER = "backups"
BACKUP_PREFIX = "faceguard-"


def backups_dir(library_file: str | os.PathLike[str]) -> Path:
    """The folder of automatic backups: ``backups/`` beside the database file."""
    return Path(library_file).parent / BACKUPS_FOLDER


def backup_name(reason: str, moment: datetime | None = None) -> str:
    """``faceguard-20261128T161458123456Z-<reason>.db`` (name order is time order)."""
    stamp = (moment or utc_now()).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{BACKUP_PREFIX}{stamp}-{reason}.db"


def copy_database(source: sqlite3.Connection, dest: Path) -> None:
    """Copy a database with SQLite's online backup API into ``dest`` (written atomically:
    a temporary file in the same folder, fsync, rename). Raises sqlite3.Error / OSError.

    The copy holds face data: it is created 0600, and a folder made for it 0700 (POSIX)."""
    if not dest.parent.is_dir():
        make_private_dir(dest.parent)
    partial = dest.with_name(dest.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    make_private_file(partial)
    target = sqlite3.connect(partial)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        target.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, dest)


def open_mode_for(file: Path, read_only: bool) -> str:
    """How to open a library: 'rw'; 'ro' (SQLite ``mode=ro``) while a writer's ``-wal`` file
    is there; otherwise 'immutable' (``immutable=1``), which reads the file as it is and never
    creates ``-wal``/``-shm`` files (``mode=ro`` alone would leave them behind, read-only)."""
    if not read_only:
        return "rw"
    return "ro" if file.with_name(file.name + "-wal").exists() else "immutable"


def recovery_steps(library_file: Path | None) -> str:
    """What to do about a damaged library (one line, for error messages)."""
    where = backups_dir(library_file) if library_file else "the backups folder"
    return (f"To recover: close FaceGuard and run `faceguard restore FILE` with the newest "
            f"good backup in {where} (the damaged library is kept as a backup).")


def is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT / SQLITE_NOTADB, or their messages."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    return (isinstance(code, int) and code & 0xFF in (11, 26)) or "malformed" in text \
        or "not a database" in text


def check_problems(conn: sqlite3.Connection, pragma: str) -> list[str]:
    """Problems SQLite's own check finds in a database file (``pragma``: ``quick_check`` or
    ``integrity_check``); empty when it is sound."""
    rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(20)")]
    if rows == ["ok"]:
        return []
    lines = [line.strip() for row in rows for line in row.splitlines()]
    return [line for line in lines if line and not line.startswith("***")] or rows


def translate_error(exc: sqlite3.Error, action: str, write: bool, busy_s: float) -> LibraryError:
    """A user-facing LibraryError for an SQLite error."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    tail = " Nothing was changed." if write else ""
    if primary in (5, 6) or "locked" in text:  # SQLITE_BUSY, SQLITE_LOCKED
        return LibraryError(
            f"The face library is in use by another program (still locked after {busy_s:g} s)"
            f" while {action}.{tail} Try again."
        )
    if primary == 8 or "readonly" in text:  # SQLITE_READONLY
        return LibraryError(READ_ONLY_MESSAGE)
    if primary in (11, 26) or "malformed" in text or "not a database" in text:
        return LibraryError(
            f"The face library database is damaged or is not a database ({text}).{tail}"
            " Restore it from a backup."
        )
    if primary == 13:  # SQLITE_FULL
        return LibraryError(f"The disk holding the face library is full.{tail}")
    if primary in (10, 14):  # SQLITE_IOERR, SQLITE_CANTOPEN
        return LibraryError(f"The face library database cannot be accessed ({text}).{tail}")
    if isinstance(exc, sqlite3.IntegrityError):
        return LibraryError(f"The face library refused the change ({text}).{tail}")
    return LibraryError(f"Face library error while {action}: {text}.{tail}")


def connect_library_file(path: str | os.PathLike[str], read_only: bool, busy_timeout_s: float
                         ) -> tuple[sqlite3.Connection, Path, bool, str]:
    """Check the library file and its folder and connect to it: the connection, the absolute
    file, whether it is opened read-only (forced for a file this process may not write) and
    the open mode (``rw``, ``ro``, ``immutable``). LibraryError with the reason otherwise."""
    file = Path(path).expanduser().absolute()
    folder = file.parent
    if not folder.is_dir():
        raise LibraryError(
            f"Cannot open the face library {file}: the folder {folder} does not exist."
        )
    if file.is_dir():
        raise LibraryError(f"Cannot open the face library {file}: it is a folder, not a file.")
    exists = file.exists()
    if not exists and read_only:
        raise LibraryError(f"Cannot open the face library {file}: the file does not exist.")
    if not exists and not os.access(folder, os.W_OK):
        raise LibraryError(
            f"Cannot create the face library {file}: the folder {folder} is read-only."
        )
    if exists and not os.access(file, os.R_OK):
        raise LibraryError(f"Cannot open the face library {file}: permission denied.")
    if (
        exists
        and not read_only
        and not (os.access(file, os.W_OK) and os.access(folder, os.W_OK))
    ):
        log.warning("Face library %s is not writable; opening it read-only.", file)
        read_only = True
    mode = open_mode_for(file, read_only)
    uri = file.as_uri() + {"rw": "?mode=rwc", "ro": "?mode=ro",
                           "immutable": "?mode=ro&immutable=1"}[mode]
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, check_same_thread=False)
    except sqlite3.Error as exc:
        raise LibraryError(f"Cannot open the face library {file}: {exc}.") from exc
    return conn, file, read_only, mode
