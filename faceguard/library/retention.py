"""Retention and erasure: old events, unknown-face crops and audit entries purged on schedule,
and a person erased so that their face data is gone from the database file.

- :func:`purge` deletes events older than ``events_days``, drops the face crop of every
  ``unknown`` event older than ``unknown_crops_hours`` and deletes audit entries older than
  ``audit_days`` (0 keeps that kind forever), all in one transaction together with one
  ``purge`` audit entry holding the counts. ``dry_run`` only counts. Audit entries go
  oldest first and only as an unbroken run (an older entry after a newer one stops it), and
  the chain is anchored at the last one deleted (:mod:`faceguard.library.audit_chain`), so
  ``faceguard audit verify`` still passes.
- :func:`erase_person` deletes a person, their templates (vectors and crops) and the crops of
  their events, and pseudonymises their events (``person_name`` becomes ``erased-<8 hex>``,
  the same for all of them, ``person_id`` NULL) and the audit details that named them (the
  audit chain is recomputed from the first entry changed; the ``erase_person`` entry counts
  them), in one transaction. SQLite's ``secure_delete`` zeroes the freed content, the
  write-ahead log is checkpointed and truncated and ``VACUUM`` rewrites the file, so
  neither the database file nor its ``-wal`` holds the old bytes afterwards. Backups made
  earlier still hold them until they are rotated out.

Both write through :meth:`FaceLibrary.upkeep` (the library's connection, its lock, its error
translation); timestamps compare as text because they are stored as UTC ISO 8601.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faceguard.errors import LibraryError
from faceguard.library import audit_chain
from faceguard.library.database import FaceLibrary, utc_now
from faceguard.settings import Settings

log = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "erased-"


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept; 0 keeps it forever."""

    events_days: int = 90
    unknown_crops_hours: int = 24
    audit_days: int = 730

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        """The retention that the settings declare (``retention.*``)."""
        return cls(settings.retention_events_days, settings.retention_unknown_crops_hours,
                   settings.retention_audit_days)

    def cutoffs(self, now: datetime) -> tuple[str | None, str | None, str | None]:
        """(events, unknown crops, audit): stored timestamps before these are purged."""
        def before(period: timedelta | None) -> str | None:
            if period is None:
                return None
            return (now - period).astimezone(UTC).isoformat(timespec="microseconds")

        return (before(timedelta(days=self.events_days) if self.events_days else None),
                before(timedelta(hours=self.unknown_crops_hours)
                       if self.unknown_crops_hours else None),
                before(timedelta(days=self.audit_days) if self.audit_days else None))


@dataclass(frozen=True)
class PurgeResult:
    """What a purge deleted (or, for a dry run, would delete)."""

    events: int
    unknown_crops: int
    audit: int
    dry_run: bool

    @property
    def total(self) -> int:
        """Records touched in all."""
        return self.events + self.unknown_crops + self.audit


# (events, unknown-face crops, audit entries): WHERE clauses over a cutoff parameter. Crops
# of events that the same purge deletes are not counted twice.
_EVENTS_WHERE = "timestamp < ?"
_CROPS_WHERE = ("decision = 'unknown' AND crop_jpeg IS NOT NULL AND timestamp < ? "
                "AND NOT timestamp < ?")
_NEVER = ""  # a cutoff that no timestamp is below: keep forever


@contextlib.contextmanager
def _secure_delete(library: FaceLibrary, action: str) -> Iterator[sqlite3.Connection]:
    """The library's connection with ``PRAGMA secure_delete = ON`` (freed content is
    overwritten with zeros), put back as it was afterwards; no transaction is open."""
    with library.upkeep(action, transaction=False) as conn:
        before = int(conn.execute("PRAGMA secure_delete").fetchone()[0])
        conn.execute("PRAGMA secure_delete = ON")
        try:
            yield conn
        finally:
            conn.execute(f"PRAGMA secure_delete = {before}")


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the write-ahead log into the database and truncate it to zero bytes.

    False when another connection was still reading an older snapshot (the ``-wal`` keeps
    its frames until that reader is done). An in-memory or non-WAL library needs none.
    """
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return True
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return int(busy) == 0


def _compact(conn: sqlite3.Connection, vacuum: bool) -> tuple[float, bool, bool]:
    """VACUUM (when asked) and truncate the WAL: (seconds, vacuumed, checkpointed).

    Runs after a commit, so a VACUUM that fails (it needs free disk space about the library's
    size) is logged and reported, never raised as if nothing had changed.
    """
    started = time.perf_counter()
    vacuumed = False
    if vacuum:
        try:
            conn.execute("VACUUM")
            vacuumed = True
        except sqlite3.Error as exc:
            log.error("the library file could not be rewritten (%s)", exc)
    done = checkpoint(conn)
    return time.perf_counter() - started, vacuumed, done


def compact(library: FaceLibrary) -> tuple[float, bool, bool]:
    """Rewrite the library file (VACUUM) and truncate its WAL, so that no freed page keeps
    old bytes: (seconds, vacuumed, checkpointed). About 25 ms a MB here."""
    with _secure_delete(library, "compacting the library") as conn:
        return _compact(conn, True)


def purge(library: FaceLibrary, retention: Retention, *, actor: str = "system",
          now: datetime | None = None, dry_run: bool = False) -> PurgeResult:
    """Delete what the retention no longer allows; one transaction, one ``purge`` audit entry.

    A dry run counts without writing (it works on a read-only library).
    """
    moment = now or utc_now()
    events_cut, crops_cut, audit_cut = retention.cutoffs(moment)
    events_param = events_cut or _NEVER
    crops_params = (crops_cut or _NEVER, events_param)
    audit_param = audit_cut or _NEVER
    if dry_run:
        def count(table: str, where: str, params: tuple[str, ...]) -> int:
            sql = f"SELECT count(*) FROM {table} WHERE {where}"
            return int(library.db.execute(sql, params).fetchone()[0])

        try:
            return PurgeResult(count("events", _EVENTS_WHERE, (events_param,)),
                               count("events", _CROPS_WHERE, crops_params),
                               audit_chain.count_purgeable(library.db.conn, audit_param),
                               dry_run=True)
        except sqlite3.Error as exc:
            raise LibraryError(f"Cannot read the face library to plan a purge: {exc}.") from exc
    action = "purging old records"
    with _secure_delete(library, action), library.upkeep(action) as conn:
        events = conn.execute(f"DELETE FROM events WHERE {_EVENTS_WHERE}",
                              (events_param,)).rowcount
        crops = conn.execute(f"UPDATE events SET crop_jpeg = NULL WHERE {_CROPS_WHERE}",
                             crops_params).rowcount
        audit = audit_chain.purge_prefix(conn, audit_param)
        library.audit(actor, "purge", {
            "events": events, "unknown_crops": crops, "audit": audit,
            "events_days": retention.events_days,
            "unknown_crops_hours": retention.unknown_crops_hours,
            "audit_days": retention.audit_days})
    return PurgeResult(events, crops, audit, dry_run=False)


@dataclass(frozen=True)
class ErasureResult:
    """What erasing a person removed, and what overwriting the freed pages cost."""

    pseudonym: str
    templates: int
    events: int  # pseudonymised
    event_crops: int
    audit_entries: int  # whose details named the person
    vacuum_s: float
    size_before: int  # bytes of the database file and its -wal
    size_after: int
    checkpointed: bool  # False: another program was reading; the -wal keeps old frames
    vacuumed: bool = True  # False: VACUUM failed or was not asked for (fragments may remain)


def _file_size(path: Path | None) -> int:
    if path is None:
        return 0
    total = 0
    for file in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            total += file.stat().st_size
    return total


def _new_pseudonym(conn: sqlite3.Connection) -> str:
    """``erased-<8 hex>``, random (not derived from the name) and not used before."""
    while True:
        candidate = PSEUDONYM_PREFIX + secrets.token_hex(4)
        taken = conn.execute("SELECT 1 FROM events WHERE person_name = ? LIMIT 1",
                             (candidate,)).fetchone()
        if taken is None:
            return candidate


def _scrub_audit(conn: sqlite3.Connection, identifiers: set[str], pseudonym: str) -> int:
    """Replace each identifier, as a JSON string value, in audit details, and recompute the
    audit chain from the first row changed; returns the rows changed."""
    changed: set[int] = set()
    replacement = json.dumps(pseudonym)
    for identifier in sorted(identifiers, key=len, reverse=True):
        for quoted in {json.dumps(identifier), json.dumps(identifier, ensure_ascii=False)}:
            rows = conn.execute("SELECT id, details FROM audit WHERE instr(details, ?) > 0",
                                (quoted,)).fetchall()
            for row_id, details in rows:
                conn.execute("UPDATE audit SET details = ? WHERE id = ?",
                             (details.replace(quoted, replacement), row_id))
                changed.add(int(row_id))
    if changed:
        audit_chain.rechain(conn, min(changed))
    return len(changed)


def erase_person(library: FaceLibrary, person_id: int, *, actor: str = "cli",
                 vacuum: bool = True) -> ErasureResult:
    """Erase a person so that their face data is gone from the file (see the module notes).

    LibraryError when there is no such person or the library cannot be written; nothing is
    changed then. The ``erase_person`` audit entry names the pseudonym, not the person.
    """
    size_before = _file_size(library.path)
    action = "erasing a person"
    with _secure_delete(library, action) as conn:
        with library.upkeep(action):
            person = library.get_person(person_id)
            if person is None:
                raise LibraryError(f"There is no person with id {person_id}.")
            pseudonym = _new_pseudonym(conn)
            identifiers = {person.name} | {str(r[0]) for r in conn.execute(
                "SELECT DISTINCT person_name FROM events WHERE person_id = ? AND "
                "person_name IS NOT NULL", (person_id,))}
            if person.employee_id:
                identifiers.add(person.employee_id)
            templates = conn.execute("DELETE FROM templates WHERE person_id = ?",
                                     (person_id,)).rowcount
            crops = conn.execute("UPDATE events SET crop_jpeg = NULL WHERE person_id = ? AND "
                                 "crop_jpeg IS NOT NULL", (person_id,)).rowcount
            events = conn.execute("UPDATE events SET person_name = ?, person_id = NULL "
                                  "WHERE person_id = ?", (pseudonym, person_id)).rowcount
            audited = _scrub_audit(conn, identifiers, pseudonym)
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
            library.audit(actor, "erase_person", {
                "id": person_id, "pseudonym": pseudonym, "templates": templates,
                "events": events, "event_crops": crops, "audit_entries": audited})
        # The freed pages are zeroed, but the WAL (and, until a checkpoint, the main file)
        # still hold the pages as they were: copy, rewrite, and truncate.
        vacuum_s, vacuumed, done = _compact(conn, vacuum)
    return ErasureResult(pseudonym, templates, events, crops, audited, vacuum_s,
                         size_before, _file_size(library.path), done, vacuumed)
