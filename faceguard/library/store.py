"""The face library's connection: opening and checking the file, transactions, and SQLite
errors turned into one-line messages (:mod:`.sqlite_file`).

File databases use WAL mode; foreign keys are on; every write runs in one ``BEGIN IMMEDIATE``
transaction (nested steps in ``Database.atomic`` savepoints), so an error leaves nothing
half-written, and a lock held by another program is waited for up to the busy timeout. What each
table holds is read and written by the store modules built on :class:`LibraryStore`
(:mod:`.people`, :mod:`.templates`, :mod:`.events`, :mod:`.audit`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database

from faceguard.errors import LibraryClosedError, LibraryError
from faceguard.library import audit_chain
from faceguard.library.blob_sealing import BlobSealing
from faceguard.library.crypto import BlobCipher
from faceguard.library.records import sql_name_key
from faceguard.library.schema import MIGRATION_NAMES, MIGRATIONS, SCHEMA_VERSION
from faceguard.library.sqlite_file import (
    READ_ONLY_MESSAGE,
    backup_name,
    backups_dir,
    check_problems,
    connect_library_file,
    copy_database,
    is_corrupt,
    recovery_steps,
    translate_error,
)

log = logging.getLogger("faceguard.library.database")

DEFAULT_BUSY_TIMEOUT_S = 5.0


class LibraryStore(BlobSealing):
    """The connection to one face library database. Use :meth:`open` or :meth:`in_memory`.

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
        self._cipher: BlobCipher | None = None  # opens and seals face blobs (encryption on)
        self._closed = False
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
    ) -> Self:
        """Open (creating if needed) the library file at ``path``.

        A file that this process may not write (or in a folder it may not write) is opened
        read-only: reading works, writes raise LibraryError. ``read_only=True`` forces that.
        Raises LibraryError for a missing folder, a folder in place of the file, a file that is
        not (or no longer) a FaceGuard database, a newer schema, or a lock held longer than
        ``busy_timeout_s``. Opening never modifies a file it rejects.
        """
        conn, file, read_only, mode = connect_library_file(path, read_only, busy_timeout_s)
        try:
            library = cls(conn, path=file, read_only=read_only, busy_timeout_s=busy_timeout_s)
        except BaseException:
            conn.close()
            raise
        library.open_mode = mode
        return library

    @classmethod
    def in_memory(cls) -> Self:
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
            conn.create_function("fg_name_key", 1, sql_name_key, deterministic=True)
            audit_chain.register(conn)  # the audit insert trigger chains each row
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
                problems = check_problems(conn, "quick_check")
            except sqlite3.Error as exc:
                if not is_corrupt(exc):
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
        err = translate_error(exc, "opening", write=True, busy_s=self._busy_timeout_s)
        steps = f" {recovery_steps(self._path)}" if "damaged" in str(err) else ""
        return LibraryError(f"Cannot open the face library {where}: {err}{steps}")

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
                self._check_open("reading the library")
                yield self._conn
            return
        self._check_open("reading the library")
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
                problems = check_problems(conn, "integrity_check" if full else "quick_check")
        except sqlite3.Error as exc:
            problems = [str(exc)]
            if not is_corrupt(exc):
                raise translate_error(exc, "checking the library", False, self._busy_timeout_s) \
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
        """Close the database connection; every later read or write raises
        :class:`LibraryClosedError` (closing twice is harmless)."""
        with self._lock:
            self._closed = True
            self._conn.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def _check_open(self, action: str) -> None:
        """LibraryClosedError when the library was closed (a caller outlived it)."""
        if self._closed:
            raise LibraryClosedError(f"Not {action}: the face library has been closed.")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _sqlite_errors(self, action: str, write: bool) -> Iterator[None]:
        """SQLite errors as LibraryError naming ``action``; a corrupt file marks the library
        damaged."""
        try:
            yield
        except sqlite3.Error as exc:
            if is_corrupt(exc):
                self._mark_damaged([str(exc)])
            raise translate_error(exc, action, write, self._busy_timeout_s) from exc

    def _check_writable(self, action: str) -> None:
        """LibraryError when the library refuses writes (read-only or damaged)."""
        if self._read_only:
            raise LibraryError(READ_ONLY_MESSAGE)
        if self._damage:
            raise LibraryError(f"Not {action}: {self._damage}")

    @contextlib.contextmanager
    def _read(self, action: str) -> Iterator[None]:
        with self._lock, self._sqlite_errors(action, write=False):
            self._check_open(action)
            yield

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[None]:
        """Run the block in one transaction; roll back and raise LibraryError on failure."""
        self._check_writable(action)
        with self._lock, self._sqlite_errors(action, write=True):
            self._check_open(action)
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
        self._check_writable(action)
        with self._lock:
            self._check_open(action)
            if self._conn.in_transaction:
                raise LibraryError(f"Not {action}: a transaction is still open.")
            with self._sqlite_errors(action, write=True):
                yield self._conn

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

