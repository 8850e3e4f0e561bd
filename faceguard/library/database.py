"""The face library: people, face templates, recognition events and the admin audit trail.

SQLite through sqlite-utils, split by what it stores: :mod:`.schema` (migrations),
:mod:`.records` (row types, value rules), :mod:`.store` (the connection, transactions,
errors), :mod:`.audit`, :mod:`.people`, :mod:`.templates`, :mod:`.events`. The schema is built by
numbered migrations applied in order inside one ``BEGIN IMMEDIATE`` transaction when the library
is opened. File databases use WAL mode; foreign keys are on; every write runs in one
``BEGIN IMMEDIATE`` transaction (nested steps in ``Database.atomic`` savepoints), so an error
leaves nothing half-written, and a lock held by another program is waited for up to the busy
timeout.

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

from faceguard.library.events import EventStore
from faceguard.library.records import (
    UNSET,
    AdminState,
    AuditEntry,
    EmbedFn,
    Event,
    Person,
    ReembedResult,
    Template,
    name_key,
    utc_now,
)
from faceguard.library.schema import MIGRATION_NAMES, MIGRATIONS, SCHEMA_VERSION
from faceguard.library.sqlite_file import (
    BACKUP_PREFIX,
    backup_name,
    backups_dir,
    copy_database,
    recovery_steps,
)
from faceguard.library.store import DEFAULT_BUSY_TIMEOUT_S
from faceguard.library.templates import TemplateStore

__all__ = [
    "BACKUP_PREFIX", "DEFAULT_BUSY_TIMEOUT_S", "MIGRATIONS", "MIGRATION_NAMES", "SCHEMA_VERSION",
    "UNSET", "AdminState", "AuditEntry", "EmbedFn", "Event", "FaceLibrary", "Person",
    "ReembedResult", "Template", "backup_name", "backups_dir", "copy_database", "name_key",
    "recovery_steps", "utc_now",
]


class FaceLibrary(TemplateStore, EventStore):
    """One face library: people, templates, events, the audit trail and the admin credential.
    Use :meth:`open` or :meth:`in_memory`. Methods are safe to call from several threads (one
    lock serialises them)."""

    def has_records(self) -> bool:
        """True when the library holds any person or event."""
        with self._read("reading the library"):
            row = self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM people) OR EXISTS (SELECT 1 FROM events)"
            ).fetchone()
        return bool(row[0])

