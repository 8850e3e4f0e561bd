"""The face library: people, face templates, recognition events and the admin audit trail.

SQLite through sqlite-utils. The schema is built by numbered migrations (sqlite-utils'
``Migrations``, recorded in its ``_sqlite_migrations`` table under the set name ``faceguard``),
applied in order inside one ``BEGIN IMMEDIATE`` transaction when the library is opened. File
databases use WAL mode; foreign keys are on; every write runs in one ``BEGIN IMMEDIATE``
transaction (nested steps in ``Database.atomic`` savepoints), so an error leaves nothing
half-written, and a lock held by another program is waited for up to the busy timeout.

Every SQLite problem reaches callers as a :class:`~faceguard.errors.LibraryError` with a one-line,
user-facing message (missing folder, not a database, damaged, locked, read-only, disk full).

Removing a person deletes their templates (and so their stored face crops) through
``ON DELETE CASCADE``. Their recognition events are kept for the attendance log: the event's
``person_id`` becomes NULL (``ON DELETE SET NULL``) and the name snapshot stored with each
event keeps the log readable. ``remove_person(..., forget_event_crops=True)`` also erases the
face crops stored with those events.

Names are unique, ignoring case and repeated spaces, among *active* people; so are employee ids.
Timestamps are stored as UTC ISO 8601 text with microseconds, so text order is time order.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database, Migrations

from faceguard.errors import ImageError, LibraryError
from faceguard.vision.image_io import decode_jpeg

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 5.0
MAX_NAME_LEN = 100
MAX_FIELD_LEN = 200

# ---------------------------------------------------------------------------------------------
# Schema migrations. Append new ones at the end; never edit or reorder applied ones.
# ---------------------------------------------------------------------------------------------

MIGRATIONS = Migrations("faceguard")


@MIGRATIONS(name="001_people")
def _m001_people(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL,
            employee_id TEXT,
            department TEXT,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX people_active_name ON people (name_key) WHERE active = 1")
    db.execute(
        "CREATE UNIQUE INDEX people_active_employee_id ON people (employee_id) "
        "WHERE active = 1 AND employee_id IS NOT NULL"
    )


@MIGRATIONS(name="002_templates")
def _m002_templates(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
            embedding BLOB NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0 AND length(embedding) = 4 * dim),
            model_id TEXT NOT NULL,
            quality REAL NOT NULL,
            crop_jpeg BLOB NOT NULL,
            source TEXT,
            created TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX templates_person ON templates (person_id)")
    db.execute("CREATE INDEX templates_model ON templates (model_id)")


@MIGRATIONS(name="003_events")
def _m003_events(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            person_id INTEGER REFERENCES people (id) ON DELETE SET NULL,
            person_name TEXT,
            similarity REAL,
            decision TEXT NOT NULL,
            crop_jpeg BLOB
        )
        """
    )
    db.execute("CREATE INDEX events_timestamp ON events (timestamp)")
    db.execute("CREATE INDEX events_person ON events (person_id, timestamp)")


@MIGRATIONS(name="004_audit")
def _m004_audit(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX audit_timestamp ON audit (timestamp)")


@MIGRATIONS(name="005_identity")
def _m005_identity(db: Database) -> None:
    """Employee ids unique regardless of case; the photo file's SHA-256 on each template.

    A library that already holds two active people whose ids differ only in case keeps them
    (nothing is lost); the unique index is then left out and the write path still refuses new
    clashes.
    """
    db.table("people").add_column("employee_key", str)
    rows = db.execute("SELECT id, employee_id FROM people WHERE employee_id IS NOT NULL")
    for person_id, employee_id in rows.fetchall():
        db.execute("UPDATE people SET employee_key = ? WHERE id = ?",
                   (name_key(employee_id), person_id))
    clash = db.execute(
        "SELECT employee_key FROM people WHERE active = 1 AND employee_key IS NOT NULL "
        "GROUP BY employee_key HAVING count(*) > 1"
    ).fetchone()
    if clash is None:
        db.execute(
            "CREATE UNIQUE INDEX people_active_employee_key ON people (employee_key) "
            "WHERE active = 1 AND employee_key IS NOT NULL"
        )
    else:
        log.warning("Employee id %r is used by two active people; new clashes are refused.",
                    clash[0])
    db.table("templates").add_column("content_sha256", str)
    db.table("templates").create_index(["person_id", "content_sha256"],
                                 index_name="templates_content")


@MIGRATIONS(name="006_admin")
def _m006_admin(db: Database) -> None:
    """The admin credential and lock-out, one row (the PIN used to live in settings.json).

    ``protected`` is 1 once a PIN has guarded this library. A library that already held people
    or events when this step ran counts as protected (its PIN was in settings.json), so losing
    the credential asks for recovery instead of starting afresh.
    """
    db.execute(
        """
        CREATE TABLE admin (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pin_hash TEXT,
            protected INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),
            failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
            locked_until TEXT,
            updated TEXT NOT NULL
        )
        """
    )
    db.execute(
        "INSERT INTO admin (id, protected, updated) VALUES (1, EXISTS (SELECT 1 FROM people) "
        "OR EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM audit WHERE action = "
        "'set_pin'), ?)",
        (_to_db_time(utc_now()),),
    )


@MIGRATIONS(name="007_liveness")
def _m007_liveness(db: Database) -> None:
    """Each event's passive-liveness score: the fused live probability 0..1 of the visit's
    scored frames, NULL where liveness was off or every frame was unsure (older events)."""
    db.table("events").add_column("liveness", float)


@MIGRATIONS(name="008_access_rules")
def _m008_access_rules(db: Database) -> None:
    """Access rules (groups, members, weekly and holiday windows, holidays, per-person
    validity), the anti-passback state, and the door outbox (messages to a webhook or an MQTT
    broker, kept until delivered). Read and written by :mod:`faceguard.library.rules`."""
    for sql in (
        "CREATE TABLE access_groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "name_key TEXT NOT NULL UNIQUE, created TEXT NOT NULL)",
        "CREATE TABLE access_members (group_id INTEGER NOT NULL REFERENCES access_groups (id) "
        "ON DELETE CASCADE, person_id INTEGER NOT NULL REFERENCES people (id) ON DELETE "
        "CASCADE, PRIMARY KEY (group_id, person_id))",
        "CREATE TABLE access_windows (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL "
        "REFERENCES access_groups (id) ON DELETE CASCADE, day INTEGER NOT NULL CHECK (day "
        "BETWEEN 0 AND 7), start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439), "
        "end_min INTEGER NOT NULL CHECK (end_min BETWEEN 0 AND 1440 AND end_min != start_min), "
        "door TEXT)",
        "CREATE TABLE access_holidays (day TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE access_validity (person_id INTEGER PRIMARY KEY REFERENCES people (id) "
        "ON DELETE CASCADE, valid_from TEXT, valid_until TEXT, disabled INTEGER NOT NULL "
        "DEFAULT 0 CHECK (disabled IN (0, 1)))",
        "CREATE TABLE access_passback (person_id INTEGER PRIMARY KEY REFERENCES people (id) "
        "ON DELETE CASCADE, direction TEXT NOT NULL CHECK (direction IN ('IN', 'OUT')), "
        "door TEXT NOT NULL, timestamp TEXT NOT NULL)",
        "CREATE TABLE door_outbox (endpoint TEXT NOT NULL, event_id TEXT NOT NULL, "
        "payload TEXT NOT NULL, created TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "next_try TEXT NOT NULL, sent TEXT, last_error TEXT, PRIMARY KEY (endpoint, event_id))",
        "CREATE INDEX access_windows_group ON access_windows (group_id)",
        "CREATE INDEX access_members_person ON access_members (person_id)",
        "CREATE INDEX door_outbox_pending ON door_outbox (endpoint, sent, next_try)",
    ):
        db.execute(sql)


MIGRATION_NAMES: tuple[str, ...] = ("001_people", "002_templates", "003_events", "004_audit",
                                     "005_identity", "006_admin", "007_liveness",
                                     "008_access_rules")
SCHEMA_VERSION = len(MIGRATION_NAMES)

# ---------------------------------------------------------------------------------------------
# Row types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A person in the library."""

    id: int
    name: str
    employee_id: str | None
    department: str | None
    active: bool
    created: datetime
    template_count: int = 0


@dataclass(frozen=True)
class Template:
    """A stored face template (without its vector and crop; see ``templates_matrix``)."""

    id: int
    person_id: int
    model_id: str
    dim: int
    quality: float
    source: str | None
    created: datetime
    content_sha256: str | None = None  # of the photo file it came from (None: a capture)


@dataclass(frozen=True)
class Event:
    """A recognition event. ``person_name`` is the person's current name, or the name they had
    when the event was logged if they have since been removed (then ``person_id`` is None)."""

    id: int
    timestamp: datetime
    kiosk_id: str
    person_id: int | None
    person_name: str | None
    similarity: float | None
    decision: str
    has_crop: bool
    crop_jpeg: bytes | None = field(default=None, repr=False)
    liveness: float | None = None  # fused live probability (None: off, unsure, older event)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the admin audit trail."""

    id: int
    timestamp: datetime
    actor: str
    action: str
    details: str


@dataclass(frozen=True)
class AdminState:
    """The admin credential and lock-out kept in the library (see ``_m006_admin``)."""

    pin_hash: str | None = field(default=None, repr=False)
    protected: bool = False  # a PIN has guarded this library (losing it needs recovery)
    failures: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True)
class ReembedResult:
    """Outcome of :meth:`FaceLibrary.reembed`."""

    updated: int
    failed: list[int]  # template ids whose crop could not be decoded or embedded


class _Unset(enum.Enum):
    UNSET = 0


UNSET = _Unset.UNSET

EmbedFn = Callable[[list[np.ndarray]], np.ndarray]

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _to_db_time(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def name_key(name: str) -> str:
    """Comparison key for names: Unicode NFC, spaces collapsed, case-folded."""
    return unicodedata.normalize("NFC", " ".join(name.split())).casefold()


def _clean_name(name: str) -> str:
    if not isinstance(name, str):
        raise LibraryError("A person's name must be text.")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        raise LibraryError("A person's name must not be empty.")
    if len(cleaned) > MAX_NAME_LEN:
        raise LibraryError(f"A person's name must be at most {MAX_NAME_LEN} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise LibraryError("A person's name must not contain control characters.")
    _refuse_hidden(cleaned, "A person's name")
    return cleaned


def _refuse_hidden(text: str, what: str) -> None:
    """Refuse bidirectional overrides and zero-width characters (they make look-alikes)."""
    hidden = sorted({f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) == "Cf"})
    if hidden:
        raise LibraryError(
            f"{what} must not contain invisible formatting characters (bidirectional "
            f"overrides, zero-width characters): found {', '.join(hidden)}.")


def _clean_optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise LibraryError(f"The {what} must be text.")
    cleaned = unicodedata.normalize("NFC", " ".join(value.split()))
    if len(cleaned) > MAX_FIELD_LEN:
        raise LibraryError(f"The {what} must be at most {MAX_FIELD_LEN} characters.")
    _refuse_hidden(cleaned, f"The {what}")
    return cleaned or None


def _vector_blob(embedding: np.ndarray) -> tuple[bytes, int]:
    """Validate and L2-normalise one embedding; return its little-endian float32 bytes and D."""
    vec = np.asarray(embedding, dtype=np.float32)
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError(f"an embedding must be a 1-D vector, got shape {vec.shape}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("an embedding must contain only finite numbers")
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        raise ValueError("an embedding must not be all zeros")
    return (vec / norm).astype("<f4").tobytes(), int(vec.size)


_READ_ONLY_MESSAGE = "The face library database is read-only; nothing was changed."
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
    a temporary file in the same folder, fsync, rename). Raises sqlite3.Error / OSError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    target = sqlite3.connect(partial)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        target.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, dest)


def _open_mode(file: Path, read_only: bool) -> str:
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


def _is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT / SQLITE_NOTADB, or their messages."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    return (isinstance(code, int) and code & 0xFF in (11, 26)) or "malformed" in text \
        or "not a database" in text


def _translate(exc: sqlite3.Error, action: str, write: bool, busy_s: float) -> LibraryError:
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
        return LibraryError(_READ_ONLY_MESSAGE)
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


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


class FaceLibrary:
    """Access to one face library database. Use :meth:`open` or :meth:`in_memory`.

    Methods are safe to call from several threads (one lock serialises them).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path | None,
        read_only: bool,
        busy_timeout_s: float,
    ) -> None:
        """Wrap an open connection; prefer :meth:`open` / :meth:`in_memory`."""
        self._path = path
        self._read_only = read_only
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._conn = conn
        self._damage: str | None = None  # why writes are refused (a failed integrity check)
        self.open_mode = "memory" if path is None else ("ro" if read_only else "rw")
        self._db = self._setup(conn)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> FaceLibrary:
        """Open (creating if needed) the library file at ``path``.

        A file that this process may not write (or in a folder it may not write) is opened
        read-only: reading works, writes raise LibraryError. ``read_only=True`` forces that.
        Raises LibraryError for a missing folder, a folder in place of the file, a file that is
        not (or no longer) a FaceGuard database, a newer schema, or a lock held longer than
        ``busy_timeout_s``. Opening never modifies a file it rejects.
        """
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
        mode = _open_mode(file, read_only)
        uri = file.as_uri() + {"rw": "?mode=rwc", "ro": "?mode=ro",
                               "immutable": "?mode=ro&immutable=1"}[mode]
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, check_same_thread=False)
        except sqlite3.Error as exc:
            raise LibraryError(f"Cannot open the face library {file}: {exc}.") from exc
        try:
            library = cls(conn, path=file, read_only=read_only, busy_timeout_s=busy_timeout_s)
        except BaseException:
            conn.close()
            raise
        library.open_mode = mode
        return library

    @classmethod
    def in_memory(cls) -> FaceLibrary:
        """A fresh, empty library in memory (for tests and demos)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        return cls(conn, path=None, read_only=False, busy_timeout_s=DEFAULT_BUSY_TIMEOUT_S)

    def _setup(self, conn: sqlite3.Connection) -> Database:
        """Check the file, set PRAGMAs, and bring the schema up to date."""
        where = str(self._path) if self._path else "in memory"
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            # Reading the schema is the first access to the file: it fails cleanly for a file
            # that is not a database, before anything could be written to it.
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            db = Database(conn, execute_plugins=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.create_function("fg_name_key", 1, _sql_name_key, deterministic=True)
            applied = {m.name for m in MIGRATIONS.applied(db)}
        except sqlite3.Error as exc:
            raise self._error_for_open(exc, where) from exc
        unknown = applied - set(MIGRATION_NAMES)
        if unknown:
            raise LibraryError(
                f"The face library {where} was written by a newer FaceGuard "
                f"(unknown schema steps: {', '.join(sorted(unknown))}); please update FaceGuard."
            )
        user_tables = {t for t in tables if not t.startswith("sqlite_")}
        if user_tables and not applied:
            raise LibraryError(
                f"{where} is an SQLite database but not a FaceGuard face library; "
                "it was left unchanged."
            )
        pending = [m for m in MIGRATION_NAMES if m not in applied]
        if self._path is not None:
            try:
                problems = self._run_check(conn, "quick_check")
            except sqlite3.Error as exc:
                if not _is_corrupt(exc):
                    raise self._error_for_open(exc, where) from exc
                problems = [str(exc)]  # still open it: reads work where SQLite can
            if problems:
                self._mark_damaged(problems)
                if pending:
                    raise LibraryError(f"Cannot open the face library {where}: {self._damage}")
        if self._read_only or self._damage:
            if pending:
                raise LibraryError(
                    f"The face library {where} needs upgrading but is read-only; "
                    "open it once with write access."
                )
            return db
        try:
            if self._path is not None:
                db.enable_wal()
            if pending:
                if applied and self._path is not None:
                    self._backup_before_migration(conn)
                self._migrate(db)
        except sqlite3.Error as exc:
            raise self._error_for_open(exc, where) from exc
        return db

    def _error_for_open(self, exc: sqlite3.Error, where: str) -> LibraryError:
        err = _translate(exc, "opening", write=True, busy_s=self._busy_timeout_s)
        steps = f" {recovery_steps(self._path)}" if "damaged" in str(err) else ""
        return LibraryError(f"Cannot open the face library {where}: {err}{steps}")

    @staticmethod
    def _run_check(conn: sqlite3.Connection, pragma: str) -> list[str]:
        """Problems found by ``PRAGMA quick_check`` / ``integrity_check`` (empty when ok)."""
        rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(20)")]
        if rows == ["ok"]:
            return []
        lines = [line.strip() for row in rows for line in row.splitlines()]
        return [line for line in lines if line and not line.startswith("***")] or rows

    def _mark_damaged(self, problems: list[str]) -> None:
        first = problems[0] if problems else "unknown problem"
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        self._damage = (f"The face library {self._path} is damaged ({first}{more}); it can be "
                        f"read where SQLite still can, but nothing is written to it. "
                        f"{recovery_steps(self._path)}")
        log.error("%s", self._damage)

    def _backup_before_migration(self, conn: sqlite3.Connection) -> None:
        assert self._path is not None
        dest = backups_dir(self._path) / backup_name("pre-upgrade")
        try:
            copy_database(conn, dest)
        except (sqlite3.Error, OSError) as exc:
            raise LibraryError(
                f"Cannot back up the face library to {dest} before upgrading it ({exc}); "
                "nothing was changed."
            ) from exc
        log.info("Backed up the face library to %s before upgrading it.", dest)

    @staticmethod
    def _migrate(db: Database) -> None:
        """Apply pending migrations, all in one IMMEDIATE transaction (each in a savepoint)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS.apply(db)
        except BaseException:
            db.rollback()
            raise
        db.commit()
        log.info("Face library schema is at version %d.", SCHEMA_VERSION)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, or None for an in-memory library."""
        return self._path

    @property
    def read_only(self) -> bool:
        """True when writes are refused."""
        return self._read_only

    @property
    def db(self) -> Database:
        """The underlying sqlite-utils Database (read access; write through this class)."""
        return self._db

    def schema_version(self) -> int:
        """How many schema migrations have been applied (equals SCHEMA_VERSION when current)."""
        with self._read("reading the schema version"):
            return len(MIGRATIONS.applied(self._db))

    def journal_mode(self) -> str:
        """SQLite journal mode ('wal' for file libraries, 'memory' in memory)."""
        with self._read("reading the journal mode"):
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    @property
    def damage(self) -> str | None:
        """Why the library is considered damaged (writes refused), or None."""
        return self._damage

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A second, read-only connection to the file (long reads need not hold the lock)."""
        if self._path is None:
            with self._lock:
                yield self._conn
            return
        query = "?mode=ro&immutable=1" if self.open_mode == "immutable" else "?mode=ro"
        conn = sqlite3.connect(self._path.as_uri() + query, uri=True,
                               timeout=self._busy_timeout_s, check_same_thread=False)
        try:
            yield conn
        finally:
            conn.close()

    def integrity_check(self, *, full: bool = True) -> list[str]:
        """Run ``PRAGMA integrity_check`` (``quick_check`` unless ``full``) on the file.

        Returns the problems found (empty when the library is sound); a damaged library
        refuses writes from then on. Reads through a separate connection, so the kiosk keeps
        logging meanwhile.
        """
        try:
            with self._reader() as conn:
                problems = self._run_check(conn, "integrity_check" if full else "quick_check")
        except sqlite3.Error as exc:
            problems = [str(exc)]
            if not _is_corrupt(exc):
                raise _translate(exc, "checking the library", False, self._busy_timeout_s) \
                    from exc
        if problems:
            self._mark_damaged(problems)
        return problems

    def backup_to(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the library to ``dest`` with SQLite's online backup API (atomic, consistent
        even while the kiosk writes). Returns the path; LibraryError when it fails."""
        target = Path(dest).expanduser().absolute()
        if self._path is not None and target == self._path:
            raise LibraryError("A backup cannot replace the library it copies.")
        try:
            with self._reader() as conn:
                copy_database(conn, target)
        except (sqlite3.Error, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise LibraryError(f"Cannot back up the face library to {target}: {reason}.") \
                from exc
        return target

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FaceLibrary:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _read(self, action: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                if _is_corrupt(exc):
                    self._mark_damaged([str(exc)])
                raise _translate(exc, action, False, self._busy_timeout_s) from exc

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[None]:
        """Run the block in one transaction; roll back and raise LibraryError on failure."""
        if self._read_only:
            raise LibraryError(_READ_ONLY_MESSAGE)
        if self._damage:
            raise LibraryError(f"Not {action}: {self._damage}")
        with self._lock:
            try:
                if self._conn.in_transaction:  # nested: a savepoint inside the open transaction
                    with self._db.atomic():
                        yield
                    return
                # Take the write lock up front (waiting up to the busy timeout), so a write that
                # reads first cannot fail half-way because another process wrote meanwhile.
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self._db.rollback()
                    raise
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._db.rollback()
                    raise
            except sqlite3.Error as exc:
                if _is_corrupt(exc):
                    self._mark_damaged([str(exc)])
                raise _translate(exc, action, True, self._busy_timeout_s) from exc

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[None]:
        """Several writes as one: all of them are kept, or none (a kill -9 half-way
        leaves no half-enrolled person). ``action`` names it in error messages."""
        with self._write(action):
            yield

    @contextlib.contextmanager
    def upkeep(self, action: str, *, transaction: bool = True) -> Iterator[sqlite3.Connection]:
        """The library's own connection for upkeep written as SQL in its own module
        (:mod:`faceguard.library.retention`): inside one write transaction, or, with
        ``transaction=False``, outside any (PRAGMAs, checkpoints, VACUUM) while holding the
        library's lock. Refused on a read-only or damaged library; SQLite errors become
        LibraryError naming ``action``."""
        if transaction:
            with self._write(action):
                yield self._conn
            return
        if self._read_only:
            raise LibraryError(_READ_ONLY_MESSAGE)
        if self._damage:
            raise LibraryError(f"Not {action}: {self._damage}")
        with self._lock:
            if self._conn.in_transaction:
                raise LibraryError(f"Not {action}: a transaction is still open.")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if _is_corrupt(exc):
                    self._mark_damaged([str(exc)])
                raise _translate(exc, action, True, self._busy_timeout_s) from exc

    @contextlib.contextmanager
    def reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The library's connection for reads written as SQL in their own module
        (:mod:`faceguard.library.rules`), holding the library's lock; SQLite errors become
        LibraryError naming ``action``. Works on a read-only library."""
        with self._read(action):
            yield self._conn

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        cursor = self._db.execute(sql, params)
        row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    def _audit_in_tx(self, actor: str | None, action: str, details: Any) -> None:
        if actor is None:
            return
        text = details if isinstance(details, str) else json.dumps(details, sort_keys=True)
        self._db.execute(
            "INSERT INTO audit (timestamp, actor, action, details) VALUES (?, ?, ?, ?)",
            (_to_db_time(utc_now()), actor, action, text),
        )

    # -- people --------------------------------------------------------------------------------

    _PERSON_SQL = """
        SELECT p.id, p.name, p.employee_id, p.department, p.active, p.created,
               (SELECT count(*) FROM templates t WHERE t.person_id = p.id) AS template_count
        FROM people p
    """

    @staticmethod
    def _person(row: Sequence[Any]) -> Person:
        return Person(
            id=row[0],
            name=row[1],
            employee_id=row[2],
            department=row[3],
            active=bool(row[4]),
            created=_from_db_time(row[5]),
            template_count=row[6],
        )

    def _person_or_raise(self, person_id: int) -> Person:
        row = self._conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (person_id,)).fetchone()
        if row is None:
            raise LibraryError(f"There is no person with id {person_id}.")
        return self._person(row)

    def _check_unique(
        self, name: str | None, employee_id: str | None, exclude_id: int | None
    ) -> None:
        """Raise LibraryError if an active person (other than exclude_id) has the name/id."""
        if name is not None:
            row = self._conn.execute(
                "SELECT name FROM people WHERE active = 1 AND name_key = ? AND id IS NOT ?",
                (name_key(name), exclude_id),
            ).fetchone()
            if row:
                raise LibraryError(f"An active person named {row[0]!r} already exists.")
        if employee_id is not None:
            row = self._conn.execute(
                "SELECT name, employee_id FROM people WHERE active = 1 AND employee_key = ? "
                "AND id IS NOT ?",
                (name_key(employee_id), exclude_id),
            ).fetchone()
            if row:
                same = "" if row[1] == employee_id else f" (as {row[1]!r})"
                raise LibraryError(
                    f"Employee id {employee_id!r} already belongs to {row[0]!r}{same}; "
                    "employee ids are compared without regard to case.")

    def add_person(
        self,
        name: str,
        employee_id: str | None = None,
        department: str | None = None,
        *,
        actor: str | None = None,
    ) -> Person:
        """Add an active person. LibraryError if the name or employee id is already in use
        among active people (names compare case-insensitively)."""
        clean = _clean_name(name)
        emp = _clean_optional(employee_id, "employee id")
        dept = _clean_optional(department, "department")
        with self._write("adding a person"):
            self._check_unique(clean, emp, None)
            person_id = self._insert(
                "INSERT INTO people (name, name_key, employee_id, employee_key, department, "
                "active, created) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (clean, name_key(clean), emp, _sql_name_key(emp), dept,
                 _to_db_time(utc_now())),
            )
            self._audit_in_tx(actor, "add_person", {"id": person_id, "name": clean})
            return self._person_or_raise(person_id)

    def get_person(self, person_id: int) -> Person | None:
        """The person with this id (active or not), or None."""
        with self._read("reading a person"):
            row = self._conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (person_id,)).fetchone()
            return self._person(row) if row else None

    def find_person_by_name(self, name: str, *, include_inactive: bool = False) -> Person | None:
        """The active person with this name (case-insensitive), or None. With
        ``include_inactive``, falls back to the most recently created inactive one."""
        order = "p.active DESC, p.created DESC, p.id DESC"
        where = "p.name_key = ?" + ("" if include_inactive else " AND p.active = 1")
        with self._read("finding a person"):
            row = self._conn.execute(
                f"{self._PERSON_SQL} WHERE {where} ORDER BY {order} LIMIT 1", (name_key(name),)
            ).fetchone()
            return self._person(row) if row else None

    def list_people(self, include_inactive: bool = False) -> list[Person]:
        """People sorted by name (case-insensitive); active ones only unless asked."""
        where = "" if include_inactive else " WHERE p.active = 1"
        with self._read("listing people"):
            rows = self._conn.execute(
                f"{self._PERSON_SQL}{where} ORDER BY p.name_key, p.id"
            ).fetchall()
            return [self._person(r) for r in rows]

    def update_person(
        self,
        person_id: int,
        *,
        name: str | _Unset = UNSET,
        employee_id: str | _Unset | None = UNSET,
        department: str | _Unset | None = UNSET,
        active: bool | _Unset = UNSET,
        actor: str | None = None,
    ) -> Person:
        """Change some fields of a person; others keep their values. Returns the new row.

        Deactivating keeps the person's templates but leaves them out of matching
        (``templates_matrix``) and frees their name for someone else.
        """
        changes: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            changes["name"] = _clean_name(name)
            changes["name_key"] = name_key(changes["name"])
        if not isinstance(employee_id, _Unset):
            changes["employee_id"] = _clean_optional(employee_id, "employee id")
            changes["employee_key"] = _sql_name_key(changes["employee_id"])
        if not isinstance(department, _Unset):
            changes["department"] = _clean_optional(department, "department")
        if not isinstance(active, _Unset):
            changes["active"] = 1 if active else 0
        with self._write("updating a person"):
            current = self._person_or_raise(person_id)
            if not changes:
                return current
            will_be_active = bool(changes.get("active", current.active))
            if will_be_active:
                self._check_unique(
                    changes.get("name", current.name),
                    changes.get("employee_id", current.employee_id),
                    person_id,
                )
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(
                f"UPDATE people SET {assignments} WHERE id = ?", [*changes.values(), person_id]
            )
            details = {k: v for k, v in changes.items() if k not in ("name_key", "employee_key")}
            self._audit_in_tx(actor, "update_person", {"id": person_id, **details})
            return self._person_or_raise(person_id)

    def rename_person(self, person_id: int, new_name: str, *, actor: str | None = None) -> Person:
        """Give a person a new name (unique among active people)."""
        return self.update_person(person_id, name=new_name, actor=actor)

    def remove_person(
        self, person_id: int, *, forget_event_crops: bool = False, actor: str | None = None
    ) -> None:
        """Delete a person and their templates and stored crops.

        Their events stay in the log with ``person_id`` NULL and the name snapshot taken when
        each was logged; ``forget_event_crops`` also erases the face images on those events.
        """
        with self._write("removing a person"):
            person = self._person_or_raise(person_id)
            if forget_event_crops:
                self._db.execute(
                    "UPDATE events SET crop_jpeg = NULL WHERE person_id = ?", (person_id,)
                )
            self._db.execute("DELETE FROM people WHERE id = ?", (person_id,))
            self._audit_in_tx(
                actor,
                "remove_person",
                {"id": person_id, "name": person.name, "forget_event_crops": forget_event_crops},
            )

    # -- templates -----------------------------------------------------------------------------

    _TEMPLATE_SQL = ("SELECT id, person_id, model_id, dim, quality, source, created, "
                     "content_sha256 FROM templates")

    @staticmethod
    def _template(row: Sequence[Any]) -> Template:
        return Template(
            id=row[0],
            person_id=row[1],
            model_id=row[2],
            dim=row[3],
            quality=float(row[4]),
            source=row[5],
            created=_from_db_time(row[6]),
            content_sha256=row[7],
        )

    def add_template(
        self,
        person_id: int,
        embedding: np.ndarray,
        model_id: str,
        quality: float,
        crop_jpeg: bytes,
        source: str | None = None,
        *,
        content_sha256: str | None = None,
        actor: str | None = None,
    ) -> Template:
        """Store a face template: the (L2-normalised) float32 embedding, the id of the model
        that made it, a quality score, the aligned crop as JPEG bytes and its source file name.
        """
        blob, dim = _vector_blob(embedding)
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be a non-empty string")
        if not isinstance(crop_jpeg, bytes | bytearray) or bytes(crop_jpeg[:2]) != b"\xff\xd8":
            raise ValueError("crop_jpeg must be JPEG bytes (faceguard.vision.image_io.encode_jpeg)")
        with self._write("adding a face template"):
            self._person_or_raise(person_id)
            template_id = self._insert(
                "INSERT INTO templates (person_id, embedding, dim, model_id, quality, crop_jpeg,"
                " source, created, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    person_id,
                    blob,
                    dim,
                    model_id,
                    float(quality),
                    bytes(crop_jpeg),
                    source,
                    _to_db_time(utc_now()),
                    content_sha256,
                ),
            )
            self._audit_in_tx(
                actor, "add_template", {"id": template_id, "person_id": person_id, "source": source}
            )
            row = self._conn.execute(
                self._TEMPLATE_SQL + " WHERE id = ?", (template_id,)
            ).fetchone()
            return self._template(row)

    def list_templates(
        self, person_id: int | None = None, model_id: str | None = None
    ) -> list[Template]:
        """Template metadata, optionally for one person and/or one model id, by id."""
        clauses: list[str] = []
        params: list[Any] = []
        if person_id is not None:
            clauses.append("person_id = ?")
            params.append(person_id)
        if model_id is not None:
            clauses.append("model_id = ?")
            params.append(model_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read("listing templates"):
            rows = self._conn.execute(f"{self._TEMPLATE_SQL}{where} ORDER BY id", params)
            return [self._template(r) for r in rows.fetchall()]

    def get_template_crop(self, template_id: int) -> bytes:
        """The stored JPEG crop of a template."""
        with self._read("reading a face crop"):
            row = self._conn.execute(
                "SELECT crop_jpeg FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
        if row is None:
            raise LibraryError(f"There is no face template with id {template_id}.")
        return bytes(row[0])

    def get_template_vector(self, template_id: int) -> np.ndarray:
        """The stored (L2-normalised) float32 vector of a template."""
        with self._read("reading a face template"):
            row = self._conn.execute(
                "SELECT embedding FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
        if row is None:
            raise LibraryError(f"There is no face template with id {template_id}.")
        return np.frombuffer(row[0], dtype="<f4").astype(np.float32)

    def remove_template(self, template_id: int, *, actor: str | None = None) -> None:
        """Delete one template."""
        with self._write("removing a face template"):
            cursor = self._db.execute("DELETE FROM templates WHERE id = ?", (template_id,))
            if cursor.rowcount == 0:
                raise LibraryError(f"There is no face template with id {template_id}.")
            self._audit_in_tx(actor, "remove_template", {"id": template_id})

    def model_ids(self) -> dict[str, int]:
        """How many templates each model id has."""
        with self._read("counting templates"):
            rows = self._conn.execute(
                "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def templates_matrix(
        self, model_id: str, *, include_inactive: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors made by ``model_id`` for (active) people, ordered by person then template.

        Returns ``(person_ids int64 (N,), matrix float32 (N, D))``; with no templates the
        matrix has shape (0, 0).
        """
        active = "" if include_inactive else " AND p.active = 1"
        with self._read("loading face templates"):
            rows = self._conn.execute(
                "SELECT t.person_id, t.dim, t.embedding FROM templates t "
                f"JOIN people p ON p.id = t.person_id WHERE t.model_id = ?{active} "
                "ORDER BY t.person_id, t.id",
                (model_id,),
            ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        dims = {r[1] for r in rows}
        if len(dims) != 1:
            raise LibraryError(
                f"Face templates for model {model_id!r} have different sizes {sorted(dims)}; "
                "the library is inconsistent."
            )
        person_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4")
        matrix = flat.reshape(len(rows), dims.pop()).astype(np.float32)
        return person_ids, matrix

    def templates_needing_reembed(self, model_id: str) -> list[Template]:
        """Templates (of anyone) that were made by a model other than ``model_id``."""
        with self._read("listing face templates"):
            rows = self._conn.execute(
                f"{self._TEMPLATE_SQL} WHERE model_id != ? ORDER BY id", (model_id,)
            ).fetchall()
        return [self._template(r) for r in rows]

    def reembed(
        self,
        model_id: str,
        embed_fn: EmbedFn,
        *,
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
        actor: str | None = None,
    ) -> ReembedResult:
        """Re-compute every template not made by ``model_id`` from its stored crop.

        ``embed_fn`` takes a list of RGB uint8 crops and returns an (n, D) array. Vectors are
        computed first; then all blobs and model ids are updated in one transaction, so an
        error (in ``embed_fn`` or the database) changes nothing. Templates whose crop cannot be
        decoded, or whose vector comes back non-finite or zero, keep their old model id and are
        listed in ``failed``. ``progress(done, total)`` is called after each batch.
        """
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be a non-empty string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self._read_only:
            raise LibraryError(_READ_ONLY_MESSAGE)
        with self._lock:
            todo = [t.id for t in self.templates_needing_reembed(model_id)]
            updates: list[tuple[bytes, int, str, int]] = []
            failed: list[int] = []
            for start in range(0, len(todo), batch_size):
                batch_ids = todo[start : start + batch_size]
                crops, crop_ids = self._decode_batch(batch_ids, failed)
                if crops:
                    vectors = np.asarray(embed_fn(crops), dtype=np.float32)
                    if vectors.ndim != 2 or vectors.shape[0] != len(crops):
                        raise ValueError(
                            f"embed_fn returned shape {vectors.shape} for {len(crops)} crops"
                        )
                    for template_id, vec in zip(crop_ids, vectors, strict=True):
                        try:
                            blob, dim = _vector_blob(vec)
                        except ValueError:
                            failed.append(template_id)
                            continue
                        updates.append((blob, dim, model_id, template_id))
                if progress is not None:
                    progress(min(start + batch_size, len(todo)), len(todo))
            updated = 0
            if updates:
                with self._write("re-embedding face templates"):
                    for blob, dim, new_model, template_id in updates:
                        cursor = self._db.execute(
                            "UPDATE templates SET embedding = ?, dim = ?, model_id = ? "
                            "WHERE id = ? AND model_id != ?",
                            (blob, dim, new_model, template_id, new_model),
                        )
                        updated += cursor.rowcount
                    self._audit_in_tx(
                        actor,
                        "reembed",
                        {"model_id": model_id, "updated": updated, "failed": sorted(failed)},
                    )
            if failed:
                log.warning("%d face templates could not be re-embedded: %s", len(failed), failed)
            return ReembedResult(updated=updated, failed=sorted(failed))

    def _decode_batch(
        self, template_ids: list[int], failed: list[int]
    ) -> tuple[list[np.ndarray], list[int]]:
        marks = ",".join("?" * len(template_ids))
        with self._read("reading face crops"):
            rows = self._conn.execute(
                f"SELECT id, crop_jpeg FROM templates WHERE id IN ({marks}) ORDER BY id",
                template_ids,
            ).fetchall()
        crops: list[np.ndarray] = []
        ids: list[int] = []
        for template_id, jpeg in rows:
            try:
                crops.append(decode_jpeg(bytes(jpeg)))
            except ImageError:
                failed.append(template_id)
                continue
            ids.append(template_id)
        return crops, ids

    # -- events --------------------------------------------------------------------------------

    def add_event(
        self,
        timestamp_utc: datetime,
        kiosk_id: str,
        person_id: int | None,
        similarity: float | None,
        decision: str,
        crop_jpeg: bytes | None = None,
        liveness: float | None = None,
    ) -> Event:
        """Log a recognition event (timezone-aware timestamp; stored in UTC).

        ``liveness`` is the fused live probability 0..1 of the visit (None: not scored).

        The person's current name is stored with the event so the log stays readable if the
        person is later removed.
        """
        stamp = _to_db_time(timestamp_utc)
        if not isinstance(kiosk_id, str) or not kiosk_id:
            raise ValueError("kiosk_id must be a non-empty string")
        if not isinstance(decision, str) or not decision:
            raise ValueError("decision must be a non-empty string")
        sim = None if similarity is None else float(similarity)
        crop = None if crop_jpeg is None else bytes(crop_jpeg)
        live = None if liveness is None else float(liveness)
        with self._write("logging an event"):
            snapshot = None
            if person_id is not None:
                snapshot = self._person_or_raise(person_id).name
            event_id = self._insert(
                "INSERT INTO events (timestamp, kiosk_id, person_id, person_name, similarity,"
                " decision, crop_jpeg, liveness) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (stamp, kiosk_id, person_id, snapshot, sim, decision, crop, live),
            )
        return Event(
            id=event_id,
            timestamp=_from_db_time(stamp),
            kiosk_id=kiosk_id,
            person_id=person_id,
            person_name=snapshot,
            similarity=sim,
            decision=decision,
            has_crop=crop is not None,
            crop_jpeg=crop,
            liveness=live,
        )

    @staticmethod
    def _event_filter(
        start: datetime | None,
        end: datetime | None,
        person: int | str | None,
        decision: str | None,
        kiosk_id: str | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if start is not None:
            clauses.append("e.timestamp >= ?")
            params.append(_to_db_time(start))
        if end is not None:
            clauses.append("e.timestamp < ?")
            params.append(_to_db_time(end))
        if isinstance(person, int) and not isinstance(person, bool):
            clauses.append("e.person_id = ?")
            params.append(person)
        elif isinstance(person, str):
            clauses.append("fg_name_key(COALESCE(p.name, e.person_name)) = ?")
            params.append(name_key(person))
        if decision is not None:
            clauses.append("e.decision = ?")
            params.append(decision)
        if kiosk_id is not None:
            clauses.append("e.kiosk_id = ?")
            params.append(kiosk_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        person: int | str | None = None,
        decision: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        kiosk_id: str | None = None,
        newest_first: bool = False,
        with_crops: bool = False,
    ) -> list[Event]:
        """Events with ``start <= timestamp < end`` (aware datetimes), oldest first by default.

        ``person`` is a person id, or a name matched case-insensitively against the current
        name (or, for removed people, the name stored with the event).
        """
        where, params = self._event_filter(start, end, person, decision, kiosk_id)
        crop = "e.crop_jpeg" if with_crops else "NULL"
        direction = "DESC" if newest_first else "ASC"
        sql = (
            "SELECT e.id, e.timestamp, e.kiosk_id, e.person_id, "
            "COALESCE(p.name, e.person_name), e.similarity, e.decision, "
            f"e.crop_jpeg IS NOT NULL, {crop}, e.liveness "
            f"FROM events e LEFT JOIN people p ON p.id = e.person_id{where} "
            f"ORDER BY e.timestamp {direction}, e.id {direction} LIMIT ? OFFSET ?"
        )
        params += [-1 if limit is None else int(limit), int(offset)]
        with self._read("reading events"):
            rows = self._conn.execute(sql, params).fetchall()
        return [
            Event(
                id=r[0],
                timestamp=_from_db_time(r[1]),
                kiosk_id=r[2],
                person_id=r[3],
                person_name=r[4],
                similarity=r[5],
                decision=r[6],
                has_crop=bool(r[7]),
                crop_jpeg=None if r[8] is None else bytes(r[8]),
                liveness=r[9],
            )
            for r in rows
        ]

    def count_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        person: int | str | None = None,
        decision: str | None = None,
        *,
        kiosk_id: str | None = None,
    ) -> int:
        """How many events :meth:`query_events` would return without a limit."""
        where, params = self._event_filter(start, end, person, decision, kiosk_id)
        with self._read("counting events"):
            row = self._conn.execute(
                f"SELECT count(*) FROM events e LEFT JOIN people p ON p.id = e.person_id{where}",
                params,
            ).fetchone()
        return int(row[0])

    def get_event_crop(self, event_id: int) -> bytes | None:
        """The face crop stored with an event, if any."""
        with self._read("reading an event"):
            row = self._conn.execute(
                "SELECT crop_jpeg FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        if row is None:
            raise LibraryError(f"There is no event with id {event_id}.")
        return None if row[0] is None else bytes(row[0])

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, details: str | dict[str, Any] = "") -> AuditEntry:
        """Record an admin action (details as text or a JSON-serialisable dict)."""
        if not actor or not action:
            raise ValueError("actor and action must be non-empty")
        text = details if isinstance(details, str) else json.dumps(details, sort_keys=True)
        stamp = _to_db_time(utc_now())
        with self._write("writing the audit log"):
            entry_id = self._insert(
                "INSERT INTO audit (timestamp, actor, action, details) VALUES (?, ?, ?, ?)",
                (stamp, actor, action, text),
            )
        return AuditEntry(entry_id, _from_db_time(stamp), actor, action, text)

    def list_audit(
        self, limit: int | None = None, offset: int = 0, *, newest_first: bool = True
    ) -> list[AuditEntry]:
        """Audit entries, newest first by default."""
        direction = "DESC" if newest_first else "ASC"
        with self._read("reading the audit log"):
            rows = self._conn.execute(
                "SELECT id, timestamp, actor, action, details FROM audit "
                f"ORDER BY timestamp {direction}, id {direction} LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset)),
            ).fetchall()
        return [AuditEntry(r[0], _from_db_time(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- admin credential ----------------------------------------------------------------------

    def admin_state(self) -> AdminState:
        """The admin PIN hash and lock-out state stored in the library."""
        with self._read("reading the admin state"):
            row = self._conn.execute(
                "SELECT pin_hash, protected, failures, locked_until FROM admin WHERE id = 1"
            ).fetchone()
        if row is None:  # the row was deleted by hand: the library was protected
            return AdminState(protected=True)
        until = None if row[3] is None else _from_db_time(row[3])
        return AdminState(row[0], bool(row[1]), int(row[2]), until)

    def set_admin_lock(self, failures: int, locked_until: datetime | None) -> None:
        """Record wrong PIN tries in a row and the end of a lock (None: not locked)."""
        until = None if locked_until is None else _to_db_time(locked_until)
        with self._write("recording the admin lock-out"):
            self._db.execute(
                "UPDATE admin SET failures = ?, locked_until = ?, updated = ? WHERE id = 1",
                (max(0, int(failures)), until, _to_db_time(utc_now())),
            )

    def set_admin_pin(
        self, pin_hash: str, *, actor: str | None, action: str = "set_pin", details: Any = ""
    ) -> None:
        """Store the admin PIN hash (clearing any lock-out), audited as ``action``."""
        if not isinstance(pin_hash, str) or not pin_hash:
            raise ValueError("pin_hash must be a non-empty string")
        now = _to_db_time(utc_now())
        with self._write("storing the admin PIN"):
            self._db.execute(
                "INSERT INTO admin (id, pin_hash, protected, failures, locked_until, updated) "
                "VALUES (1, ?, 1, 0, NULL, ?) ON CONFLICT (id) DO UPDATE SET "
                "pin_hash = excluded.pin_hash, protected = 1, failures = 0, "
                "locked_until = NULL, updated = excluded.updated",
                (pin_hash, now),
            )
            self._audit_in_tx(actor, action, details)

    def has_records(self) -> bool:
        """True when the library holds any person or event."""
        with self._read("reading the library"):
            row = self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM people) OR EXISTS (SELECT 1 FROM events)"
            ).fetchone()
        return bool(row[0])


def _sql_name_key(value: str | None) -> str | None:
    return None if value is None else name_key(value)
